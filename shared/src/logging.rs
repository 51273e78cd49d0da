//! One logging set-up for every binary: `RUST_LOG` filters (default `info`),
//! lines go to stderr so that stdout stays for a command's own output.
//!
//! Colour escapes only reach a terminal: a worker's log redirected to a file
//! or collected by a platform must be plain text, and `NO_COLOR` (any value)
//! turns them off even on a terminal, as <https://no-color.org> asks. This is
//! read here rather than through `Config` because logging starts before the
//! configuration is read (so that configuration errors are logged too).

use std::io::IsTerminal;

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=off,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some(),
        ))
        .with_target(false)
        .try_init();
}

fn colour_wanted(stderr_is_terminal: bool, no_color_set: bool) -> bool {
    stderr_is_terminal && !no_color_set
}

#[cfg(test)]
mod tests {
    use super::colour_wanted;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_wanted(true, false));
        assert!(
            !colour_wanted(false, false),
            "a file or pipe gets no escapes"
        );
        assert!(!colour_wanted(true, true), "NO_COLOR wins on a terminal");
        assert!(!colour_wanted(false, true));
    }
}
