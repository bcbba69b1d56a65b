//! `tern.toml` parsing and validation (tern-common `Config::from_toml_str`) on arbitrary text.
//!
//! Neither the TOML layer nor validation may panic; a rejected file reports at least one
//! error and its report prints; an accepted one yields a configuration whose derived values
//! (certificate names, retry schedule) compute. Validation reads no files, so any path in the
//! input is harmless; relative paths resolve against a directory that does not exist.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tern_common::config::Config;

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text, Path::new("/nonexistent/tern-fuzz")) {
        Ok(config) => {
            let _ = config.self_signed_names();
            let mut last = std::time::Duration::ZERO;
            for attempt in 1..=64 {
                let delay = config.outbound.retry_delay(attempt);
                // The schedule only grows, up to its cap.
                assert!(delay >= last || delay == config.outbound.retry_max);
                last = delay;
            }
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            assert!(!errors.errors().is_empty(), "rejected without a reason");
            let _ = errors.to_string();
        }
    }
}
