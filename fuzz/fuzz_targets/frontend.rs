//! Fuzz the whole Dockerfile frontend: parse, dump, lower (scoping, stage
//! graph, checks), the shell-word lexer on every word, and the same bytes
//! as a `.dockerignore`. Nothing may panic; errors must carry a span inside
//! the input.
#![no_main]

use std::collections::BTreeMap;

use kiln_dockerfile::lower::{lower, LowerOptions};
use kiln_dockerfile::shell::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The same bytes as a .dockerignore.
    if let Ok(rules) = kiln_dockerfile::ignore::IgnoreRules::parse(text) {
        for path in ["a", "a/b/c.go", ".git/config", "node_modules/x/y", "./README.md"] {
            let _ = rules.is_excluded(path);
            let _ = rules.may_include_under(path);
        }
    }
    let df = match kiln_dockerfile::parse(text) {
        Ok(df) => df,
        Err(e) => {
            assert!(e.span.end <= text.len(), "span out of range");
            let _ = kiln_dockerfile::diagnostic::render("Dockerfile", text, e.span, &e.to_string());
            return;
        }
    };
    let _ = df.dump();
    let lexer = Lexer::new(df.escape);
    let env: BTreeMap<String, String> = [("A".to_string(), "x y".to_string())].into();
    for node in &df.nodes {
        for w in node.words() {
            let _ = lexer.process_word(&w.value, &env);
            let _ = lexer.process_words(&w.value, &env);
        }
    }
    let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
    let host: kiln_oci::Platform = "linux/amd64".parse().expect("valid platform");
    let opts = LowerOptions::new(&args, &host);
    if let Err(e) = lower(&df, &opts) {
        assert!(e.span.end <= text.len(), "span out of range");
        let _ = kiln_dockerfile::diagnostic::render("Dockerfile", text, e.span, &e.to_string());
    }
});
