//! The config loader: any text gives a config or an error that names what to
//! fix, never a panic.
#![no_main]

use atlas_node::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = toml::from_str::<Config>(text) {
        let _ = cfg.validate();
    }
});
