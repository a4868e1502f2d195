//! Client quotas (KIP-13, KIP-55, KIP-124): `producer_byte_rate` on produce requests,
//! `consumer_byte_rate` on consumer fetches and `request_percentage` on the time requests keep
//! the broker busy, set with AlterClientQuotas on users, client ids or both and read from the
//! metadata image. A client over its quota gets `throttle_time_ms` in its response and its
//! connection is muted that long; usage is a token bucket
//! per metered entity (`usage_bucket`). Connections of the inter-broker listener are not metered.

mod busy_time;
mod manager;
mod usage_bucket;

pub(crate) use busy_time::BusyTime;
pub(crate) use manager::{Client, ClientQuotas};
