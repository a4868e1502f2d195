//! Waiting on watch channels from background tasks: shutdown flags and image progress. The
//! waits resolve to `()` so no channel guard is held across the caller's other awaits.

use std::sync::Arc;

use tokio::sync::watch;

use crate::image::MetadataImage;

/// Resolves once the flag is true (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Resolves once the image has been applied past `offset` (or the image feed ended).
pub(crate) async fn image_past(rx: &mut watch::Receiver<Arc<MetadataImage>>, offset: u64) {
    // An error means the feed ended; the caller's loop then notices the shutdown.
    let _ = rx.wait_for(|image| image.offset > offset).await;
}
