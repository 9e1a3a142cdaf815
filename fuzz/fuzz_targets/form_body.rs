//! The form reader on any bytes: it never panics, and a form it accepts holds only
//! allowed fields, each once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::form::Form;

const ALLOWED: &[&str] = &["email", "password", "remember", "next"];

fuzz_target!(|body: &[u8]| {
    let Ok(form) = Form::parse(body, ALLOWED) else {
        return;
    };
    for name in ALLOWED {
        if let Some(value) = form.optional(name) {
            assert!(!value.contains('\0'), "NUL accepted in {name}");
        }
    }
});
