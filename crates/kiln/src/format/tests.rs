//! Rendering tests. `GO_CASES` are what docker/cli's formatter (its
//! `Context.Write`, rebuilt on Go 1.19's `text/template` and
//! `text/tabwriter`) prints for the same formats, rows and header titles.

use serde_json::{json, Value};

use super::*;

/// Three `docker images` rows, as the image commands will build them.
const ROWS: &str = r#"[{"Repository": "alpine", "Tag": "latest", "Digest": "<none>", "ID": "0123456789ab", "CreatedSince": "2 weeks ago", "CreatedAt": "2024-01-01 00:00:00 +0000 UTC", "Size": "7.8MB", "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A"}, {"Repository": "registry.example.com/team/app", "Tag": "v1.2.3", "Digest": "sha256:ffff", "ID": "ba9876543210", "CreatedSince": "", "CreatedAt": "", "Size": "155MB", "Containers": "2", "SharedSize": "0B", "UniqueSize": "155MB"}, {"Repository": "<none>", "Tag": "<none>", "Digest": "<none>", "ID": "deadbeef0000", "CreatedSince": "3 months ago", "CreatedAt": "x", "Size": "1e+03kB", "Containers": "0", "SharedSize": "N/A", "UniqueSize": "N/A"}]"#;

#[rustfmt::skip]
const GO_CASES: &[(&str, &str, Result<&str, &str>)] = &[
    ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("REPOSITORY                      TAG       IMAGE ID       CREATED        SIZE\nalpine                          latest    0123456789ab   2 weeks ago    7.8MB\nregistry.example.com/team/app   v1.2.3    ba9876543210   N/A            155MB\n<none>                          <none>    deadbeef0000   3 months ago   1e+03kB\n")),
    ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("REPOSITORY                      TAG       DIGEST        IMAGE ID       CREATED        SIZE\nalpine                          latest    <none>        0123456789ab   2 weeks ago    7.8MB\nregistry.example.com/team/app   v1.2.3    sha256:ffff   ba9876543210   N/A            155MB\n<none>                          <none>    <none>        deadbeef0000   3 months ago   1e+03kB\n")),
    ("{{.ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("0123456789ab\nba9876543210\ndeadbeef0000\n")),
    ("{{.Repository}}:{{.Tag}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("alpine:latest\nregistry.example.com/team/app:v1.2.3\n<none>:<none>\n")),
    ("json", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("{\"Containers\":\"N/A\",\"CreatedAt\":\"2024-01-01 00:00:00 +0000 UTC\",\"CreatedSince\":\"2 weeks ago\",\"Digest\":\"<none>\",\"ID\":\"0123456789ab\",\"Repository\":\"alpine\",\"SharedSize\":\"N/A\",\"Size\":\"7.8MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\"}\n{\"Containers\":\"2\",\"CreatedAt\":\"\",\"CreatedSince\":\"\",\"Digest\":\"sha256:ffff\",\"ID\":\"ba9876543210\",\"Repository\":\"registry.example.com/team/app\",\"SharedSize\":\"0B\",\"Size\":\"155MB\",\"Tag\":\"v1.2.3\",\"UniqueSize\":\"155MB\"}\n{\"Containers\":\"0\",\"CreatedAt\":\"x\",\"CreatedSince\":\"3 months ago\",\"Digest\":\"<none>\",\"ID\":\"deadbeef0000\",\"Repository\":\"<none>\",\"SharedSize\":\"N/A\",\"Size\":\"1e+03kB\",\"Tag\":\"<none>\",\"UniqueSize\":\"N/A\"}\n")),
    ("table {{.ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("IMAGE ID\n0123456789ab\nba9876543210\ndeadbeef0000\n")),
    ("  table {{.ID}}  ", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("table 0123456789ab\ntable ba9876543210\ntable deadbeef0000\n")),
    ("table {{.Repository}}\\t{{.Tag}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("REPOSITORY                      TAG\nalpine                          latest\nregistry.example.com/team/app   v1.2.3\n<none>                          <none>\n")),
    ("{{.Repository}}\\t{{.Tag}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("alpine\tlatest\nregistry.example.com/team/app\tv1.2.3\n<none>\t<none>\n")),
    ("  {{.ID}}  ", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("0123456789ab\nba9876543210\ndeadbeef0000\n")),
    ("{{.ID}}\\n{{.Size}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("0123456789ab\n7.8MB\nba9876543210\n155MB\ndeadbeef0000\n1e+03kB\n")),
    ("table {{.ID}}\\t{{.Size}}\\n", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("IMAGE ID   SIZE\n\n0123456789ab   7.8MB\n\nba9876543210   155MB\n\ndeadbeef0000   1e+03kB\n\n")),
    ("table {{upper .Repository}}\t{{json .Tag}}\t{{lower .ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("REPOSITORY                      TAG        IMAGE ID\nALPINE                          \"latest\"   0123456789ab\nREGISTRY.EXAMPLE.COM/TEAM/APP   \"v1.2.3\"   ba9876543210\n<NONE>                          \"<none>\"   deadbeef0000\n")),
    ("table {{.Repository | printf \"%.5s\"}}\t{{.Tag}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("REPOS     TAG\nalpin     latest\nregis     v1.2.3\n<none     <none>\n")),
    ("table {{.Size}}\t{{.Repository}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("SIZE      REPOSITORY\n7.8MB     alpine\n155MB     registry.example.com/team/app\n1e+03kB   <none>\n")),
    ("table   {{.ID}}\t{{.Size}}   ", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("IMAGE ID       SIZE\n0123456789ab   7.8MB\nba9876543210   155MB\ndeadbeef0000   1e+03kB\n")),
    ("tableX{{.ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("XIMAGE ID\nX0123456789ab\nXba9876543210\nXdeadbeef0000\n")),
    ("{{foo}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Err("template parsing error: template: :1: function \"foo\" not defined")),
    ("table {{foo}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Err("template parsing error: template: :1: function \"foo\" not defined")),
    ("{{.ID.X}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Err("template parsing error: template: :1:5: executing \"\" at <.ID.X>: can't evaluate field X in type interface {}")),
    ("table {{.ID.X}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Err("template parsing error: template: :1:5: executing \"\" at <.ID.X>: can't evaluate field X in type interface {}")),
    ("{{json .}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("{\"Containers\":\"N/A\",\"CreatedAt\":\"2024-01-01 00:00:00 +0000 UTC\",\"CreatedSince\":\"2 weeks ago\",\"Digest\":\"<none>\",\"ID\":\"0123456789ab\",\"Repository\":\"alpine\",\"SharedSize\":\"N/A\",\"Size\":\"7.8MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\"}\n{\"Containers\":\"2\",\"CreatedAt\":\"\",\"CreatedSince\":\"\",\"Digest\":\"sha256:ffff\",\"ID\":\"ba9876543210\",\"Repository\":\"registry.example.com/team/app\",\"SharedSize\":\"0B\",\"Size\":\"155MB\",\"Tag\":\"v1.2.3\",\"UniqueSize\":\"155MB\"}\n{\"Containers\":\"0\",\"CreatedAt\":\"x\",\"CreatedSince\":\"3 months ago\",\"Digest\":\"<none>\",\"ID\":\"deadbeef0000\",\"Repository\":\"<none>\",\"SharedSize\":\"N/A\",\"Size\":\"1e+03kB\",\"Tag\":\"<none>\",\"UniqueSize\":\"N/A\"}\n")),
    ("table {{range .}}x{{end}}\t{{.ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("xxxxxxxxxx   IMAGE ID\nxxxxxxxxxx   0123456789ab\nxxxxxxxxxx   ba9876543210\nxxxxxxxxxx   deadbeef0000\n")),
    ("{{pad .Tag 1 1}}|", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok(" latest |\n v1.2.3 |\n <none> |\n")),
    ("table {{pad .Tag 1 1}}|\t{{.ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok(" TAG |      IMAGE ID\n latest |   0123456789ab\n v1.2.3 |   ba9876543210\n <none> |   deadbeef0000\n")),
    ("table {{truncate .ID 4}}\t{{.Tag}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("IMAGE ID   TAG\n0123       latest\nba98       v1.2.3\ndead       <none>\n")),
    ("table {{.ID}}\t", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("IMAGE ID       \n0123456789ab   \nba9876543210   \ndeadbeef0000   \n")),
    ("table \t{{.ID}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("          IMAGE ID\n          0123456789ab\n          ba9876543210\n          deadbeef0000\n")),
    ("table {{.ID}}\t{{.Tag}}\t{{.Size}}\n{{.Repository}}", r#"[{"Containers":"N/A","CreatedAt":"2024-01-01 00:00:00 +0000 UTC","CreatedSince":"2 weeks ago","Digest":"\u003cnone\u003e","ID":"0123456789ab","Repository":"alpine","SharedSize":"N/A","Size":"7.8MB","Tag":"latest","UniqueSize":"N/A"},{"Containers":"2","CreatedAt":"","CreatedSince":"","Digest":"sha256:ffff","ID":"ba9876543210","Repository":"registry.example.com/team/app","SharedSize":"0B","Size":"155MB","Tag":"v1.2.3","UniqueSize":"155MB"},{"Containers":"0","CreatedAt":"x","CreatedSince":"3 months ago","Digest":"\u003cnone\u003e","ID":"deadbeef0000","Repository":"\u003cnone\u003e","SharedSize":"N/A","Size":"1e+03kB","Tag":"\u003cnone\u003e","UniqueSize":"N/A"}]"#, Ok("IMAGE ID   TAG       SIZE\nREPOSITORY\n0123456789ab   latest    7.8MB\nalpine\nba9876543210   v1.2.3    155MB\nregistry.example.com/team/app\ndeadbeef0000   <none>    1e+03kB\n<none>\n")),
    ("table {{.ID}}\t{{.Size}}", r#"[]"#, Ok("IMAGE ID   SIZE\n")),
    ("json", r#"[]"#, Ok("")),
    ("{{.A}}", r#"[{"A":"x \u003cy\u003e \u0026 z"},{"A":1},{"A":null}]"#, Ok("x <y> & z\n1\n<no value>\n")),
    ("json", r#"[{"a":[1,2.5,null],"b":"\u003ca\u0026b\u003e","c":{"z":true}}]"#, Ok("{\"a\":[1,2.5,null],\"b\":\"<a&b>\",\"c\":{\"z\":true}}\n")),
];

fn rows(json: &str) -> Vec<Value> {
    serde_json::from_str(json).expect("test rows are a JSON array")
}

/// The rendered text, or the error as main prints it (with its causes).
fn render_str(format: &str, rows: &[Value], headers: &[(&str, &str)]) -> Result<String, String> {
    render_to_string(format, rows, headers).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
}

#[test]
fn matches_docker_formatter() {
    let mut failures = Vec::new();
    for (format, data, want) in GO_CASES {
        let got = render_str(format, &rows(data), IMAGE_HEADERS);
        let want = want.map(str::to_string).map_err(str::to_string);
        if got != want {
            failures.push(format!("{format:?}\n   got: {got:?}\n  want: {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        GO_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn image_table_is_dockers_default() {
    let out = render_str(IMAGE_TABLE, &rows(ROWS), IMAGE_HEADERS).expect("renders");
    assert_eq!(
        out,
        "REPOSITORY                      TAG       IMAGE ID       CREATED        SIZE\n\
         alpine                          latest    0123456789ab   2 weeks ago    7.8MB\n\
         registry.example.com/team/app   v1.2.3    ba9876543210   N/A            155MB\n\
         <none>                          <none>    deadbeef0000   3 months ago   1e+03kB\n"
    );
}

#[test]
fn bare_table_and_empty_format_use_the_header_columns() {
    let cols = [("ID", "IMAGE ID"), ("Size", "SIZE")];
    let want =
        "IMAGE ID       SIZE\n0123456789ab   7.8MB\nba9876543210   155MB\ndeadbeef0000   1e+03kB\n";
    assert_eq!(render_str("table", &rows(ROWS), &cols).as_deref(), Ok(want));
    assert_eq!(render_str("", &rows(ROWS), &cols).as_deref(), Ok(want));
    let mut out = Vec::new();
    render_table(&cols, &rows(ROWS), &mut out).expect("renders");
    assert_eq!(String::from_utf8(out).expect("utf-8"), want);
    assert_eq!(default_table_format(&cols), "table {{.ID}}\t{{.Size}}");
}

#[test]
fn fields_without_a_title_are_upper_cased() {
    let out = render_str("table {{.Tag}}\t{{.Unknown}}", &rows(ROWS), IMAGE_HEADERS);
    assert_eq!(
        out.as_deref(),
        Ok("TAG       UNKNOWN\nlatest    <no value>\nv1.2.3    <no value>\n<none>    <no value>\n")
    );
    let out = render_str(
        "table {{.name}}\t{{.Config.Env}}",
        &[json!({"name": "x", "Config": {"Env": ["A=1"]}})],
        &[],
    );
    assert_eq!(out.as_deref(), Ok("NAME      CONFIG\nx         [A=1]\n"));
}

#[test]
fn json_format_is_one_object_per_line() {
    let out = render_str(
        "json",
        &[json!({"b": 1, "a": "<x>"}), json!({"c": null})],
        &[],
    );
    assert_eq!(
        out.as_deref(),
        Ok("{\"a\":\"<x>\",\"b\":1}\n{\"c\":null}\n")
    );
    // Only the exact word: anything else is a template.
    assert_eq!(
        render_str(" json", &[json!({})], &[]).as_deref(),
        Ok("json\n")
    );
}

#[test]
fn a_failing_row_prints_nothing() {
    let data = [json!({"A": "ok"}), json!({"A": 5})];
    let mut out = Vec::new();
    let err = render("{{upper .A}}", &data, &[], &mut out).expect_err("row 2 fails");
    assert!(out.is_empty());
    assert!(matches!(err, FormatError::Template(_)));
    assert_eq!(
        format!("{:#}", anyhow::Error::from(err)),
        "template parsing error: template: :1:8: executing \"\" at <.A>: wrong type for value; expected string; got int"
    );
}

#[test]
fn parse_errors_read_like_dockers() {
    let err = render_to_string("{{.ID", &[], &[]).expect_err("unclosed");
    assert_eq!(err.to_string(), "template parsing error");
    assert_eq!(
        format!("{:#}", anyhow::Error::from(err)),
        "template parsing error: template: :1: unclosed action"
    );
}

#[test]
fn write_errors_are_reported() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = render("{{.}}", &[json!(1)], &[], &mut Broken).expect_err("broken pipe");
    assert!(matches!(err, FormatError::Write(ref e) if e.kind() == io::ErrorKind::BrokenPipe));
}

#[test]
fn escapes_and_spaces_are_handled_like_docker() {
    assert_eq!(unescape("  a\\tb\\nc\\\\t  "), "a\tb\nc\\\t");
    assert_eq!(unescape("\ta "), "\ta");
    assert_eq!(classify("json", &[]), Kind::Lines("{{json .}}".into()));
    assert_eq!(classify("table {{.A}}", &[]), Kind::Table("{{.A}}".into()));
    assert_eq!(
        classify("  table {{.A}}", &[]),
        Kind::Lines("table {{.A}}".into())
    );
    assert_eq!(
        classify("table", &[("A", "X")]),
        Kind::Table("{{.A}}".into())
    );
}

#[test]
fn wide_characters_align_by_display_width() {
    let data = [json!({"N": "日本語", "V": 1}), json!({"N": "abc", "V": 2})];
    let out = render_str("table {{.N}}\t{{.V}}", &data, &[]);
    assert_eq!(
        out.as_deref(),
        Ok("N         V\n日本語    1\nabc       2\n")
    );
}
