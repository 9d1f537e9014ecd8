//! Inputs that stress the frontend's edges (and, when `make fuzz` finds a
//! crash, its input goes here first). Every one must parse or fail with an
//! error whose span lies inside the text, and lowering must not panic.

use std::collections::BTreeMap;

use kiln_dockerfile::diagnostic::render;
use kiln_dockerfile::lower::{lower, LowerOptions};

const CASES: &[&str] = &[
    "",
    "\u{feff}",
    "\\",
    "\\\n\\\n",
    "FROM a\nRUN \\",
    "FROM a\nCOPY --from=\"é x y",
    "FROM a\nCOPY --chown=é\\",
    "FROM a\nHEALTHCHECK \u{a0}CMD x",
    "FROM a\nHEALTHCHECK CMD",
    "FROM a\nRUN <<",
    "FROM a\nRUN <<é\né",
    "FROM a\nRUN 99999999999999999999<<EOF\nEOF\n",
    "FROM a\nCOPY <<'' /x\n\n",
    "FROM a\nONBUILD",
    "FROM a\nONBUILD ONBUILD",
    "FROM a\nONBUILD RUN <<EOF\nx\nEOF\n",
    "FROM a\nENV ${a:-${b:-${c:-${d",
    "FROM a\nENV x=${a/",
    "FROM a\nENV x=${a//\\",
    "FROM a\nWORKDIR ${x#[}",
    "FROM $\nRUN x",
    "ARG A=${A}\nFROM ${A:-scratch}",
    "FROM --platform= a",
    "FROM --platform=$X a",
    "FROM a AS b\nFROM b AS a\nCOPY --from=a / /",
    "FROM a\nCOPY --from=18446744073709551616 / /",
    "FROM a\nRUN --mount=type=cache,target=/c,\"",
    "FROM a\nRUN --mount=,,,",
    "# escape=`\nFROM a\nRUN x `",
    "# escape=\u{1F600}\nFROM a",
    "FROM a\nEXPOSE 80:80/TCP",
    "FROM a\nSHELL []",
    "FROM a\nCMD [1]",
    "FROM a\nCMD [\"a\", [\"b\"]]",
    "FROM a\n\u{2028}RUN x",
    "FROM a\r\nRUN a \\\r\n\r\n b\r\n",
];

#[test]
fn no_panics_and_spans_inside() {
    let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
    let host: kiln_oci::Platform = "linux/amd64".parse().expect("platform");
    let opts = LowerOptions::new(&args, &host);
    for text in CASES {
        match kiln_dockerfile::parse(text) {
            Err(e) => {
                assert!(e.span.end <= text.len(), "{text:?}: {e:?}");
                let _ = render("Dockerfile", text, e.span, &e.to_string());
            }
            Ok(df) => {
                let _ = df.dump();
                if let Err(e) = lower(&df, &opts) {
                    assert!(e.span.end <= text.len(), "{text:?}: {e:?}");
                    let _ = render("Dockerfile", text, e.span, &e.to_string());
                }
            }
        }
    }
}
