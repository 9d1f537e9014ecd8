//! Path helpers shared by the frontend: Go's `path.Clean`, because
//! Docker's rules (`.dockerignore` patterns, cache ids, COPY sources) are
//! stated in its terms.

/// Go's `path.Clean`: the shortest equivalent of a `/`-separated path
/// (`.` and empty elements removed, `..` resolved lexically, never above
/// the root of a rooted path; `.` for nothing).
pub fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn like_go() {
        for (i, o) in [
            ("", "."),
            (".", "."),
            ("a/b/../c", "a/c"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("//a//b/", "/a/b"),
            ("./a/./", "a"),
            ("/", "/"),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }
}
