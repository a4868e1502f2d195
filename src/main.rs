//! `rivulet`: command line, configuration loading, runtime and signal handling.

fn main() -> anyhow::Result<()> {
    Ok(())
}
