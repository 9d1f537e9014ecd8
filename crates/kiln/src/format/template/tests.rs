//! Template tests. `GO_CASES` are the outputs and errors of Go 1.19's
//! `text/template` with Docker's functions for the same templates and JSON
//! data (integral numbers decoded as ints, as Docker's typed fields are).

use serde_json::{json, Value};

use super::*;

/// The data most golden cases run against.
const D: &str = r#"{"Repository": "alpine", "Tag": "latest", "ID": "sha256:abc", "Size": 7800000, "Labels": {"maintainer": "me", "org.opencontainers.image.title": "x <y> & z"}, "RepoTags": ["alpine:latest", "alpine:3"], "Empty": "", "Zero": 0, "False": false, "EmptyList": [], "EmptyMap": {}, "Nested": {"A": {"B": "deep"}, "N": 2}, "Float": 1.5, "Names": "a,b,c", "Mixed": [1, "two", true, 2.5, {"k": "v"}, [1, 2]], "Unicode": "h\u00e9llo w\u00f6rld", "Ints": [3, 1, 2], "Cfg": {"Env": ["A=1", "B=2"], "Cmd": ["sh", "-c", "echo hi"]}, "Map": {"b": 2, "a": 1, "c": 3}, "Quote": "say \"hi\"\n", "Neg": -5}"#;

type Case = (
    &'static str,
    &'static str,
    Result<&'static str, &'static str>,
);

#[rustfmt::skip]
const GO_CASES: &[Case] = &[
    (r#"plain text"#, D, Ok(r#"plain text"#)),
    (r#""#, D, Ok(r#""#)),
    (r#"{{.Repository}}:{{.Tag}}"#, D, Ok(r#"alpine:latest"#)),
    (r#"{{.Nested.A.B}}"#, D, Ok(r#"deep"#)),
    (r#"{{.Missing}}"#, D, Ok(r#"<no value>"#)),
    (r#"{{.Missing.Deeper}}"#, D, Ok(r#"<no value>"#)),
    (r#"{{.Nested.Missing}}"#, D, Ok(r#"<no value>"#)),
    (r#"{{.}}"#, r#""just a string""#, Ok(r#"just a string"#)),
    (r#"{{.}}"#, r#"42"#, Ok(r#"42"#)),
    (r#"{{.}}"#, r#"[1, "a", true]"#, Ok(r#"[1 a true]"#)),
    (r#"{{.}}"#, r#"{"b": [1, 2], "a": {"x": "y"}}"#, Ok(r#"map[a:map[x:y] b:[1 2]]"#)),
    (r#"{{.Mixed}}"#, D, Ok(r#"[1 two true 2.5 map[k:v] [1 2]]"#)),
    (r#"{{.Map}}"#, D, Ok(r#"map[a:1 b:2 c:3]"#)),
    (r#"{{.Float}}"#, D, Ok(r#"1.5"#)),
    (r#"{{.False}} {{.Zero}} {{.Empty}}|"#, D, Ok(r#"false 0 |"#)),
    (r#"{{.Neg}}"#, D, Ok(r#"-5"#)),
    (r#"{{.EmptyList}}{{.EmptyMap}}"#, D, Ok(r#"[]map[]"#)),
    (r#"{{json .}}"#, D, Ok(r#"{"Cfg":{"Cmd":["sh","-c","echo hi"],"Env":["A=1","B=2"]},"Empty":"","EmptyList":[],"EmptyMap":{},"False":false,"Float":1.5,"ID":"sha256:abc","Ints":[3,1,2],"Labels":{"maintainer":"me","org.opencontainers.image.title":"x <y> & z"},"Map":{"a":1,"b":2,"c":3},"Mixed":[1,"two",true,2.5,{"k":"v"},[1,2]],"Names":"a,b,c","Neg":-5,"Nested":{"A":{"B":"deep"},"N":2},"Quote":"say \"hi\"\n","RepoTags":["alpine:latest","alpine:3"],"Repository":"alpine","Size":7800000,"Tag":"latest","Unicode":"héllo wörld","Zero":0}"#)),
    (r#"{{json .Labels}}"#, D, Ok(r#"{"maintainer":"me","org.opencontainers.image.title":"x <y> & z"}"#)),
    (r#"{{json .RepoTags}}"#, D, Ok(r#"["alpine:latest","alpine:3"]"#)),
    (r#"{{json .Missing}}"#, D, Ok(r#"null"#)),
    (r#"{{.Labels | json}}"#, D, Ok(r#"{"maintainer":"me","org.opencontainers.image.title":"x <y> & z"}"#)),
    (r#"{{json .Quote}}"#, D, Ok(r#""say \"hi\"\n""#)),
    (r#"{{json .Float}}"#, D, Ok(r#"1.5"#)),
    (r#"{{json "<&>"}}"#, D, Ok(r#""<&>""#)),
    (r#"{{upper .Repository}}"#, D, Ok(r#"ALPINE"#)),
    (r#"{{lower "ABC"}}"#, D, Ok(r#"abc"#)),
    (r#"{{title "hello world-foo_bar baz"}}"#, D, Ok(r#"Hello World-Foo_bar Baz"#)),
    (r#"{{split .Names ","}}"#, D, Ok(r#"[a b c]"#)),
    (r#"{{split "abc" ""}}"#, D, Ok(r#"[a b c]"#)),
    (r#"{{split "" ","}}"#, D, Ok(r#"[]"#)),
    (r#"{{join .RepoTags ", "}}"#, D, Ok(r#"alpine:latest, alpine:3"#)),
    (r#"{{join .Mixed "|"}}"#, D, Ok(r#"1|two|true|2.5|map[k:v]|[1 2]"#)),
    (r#"{{join .Map ","}}"#, D, Ok(r#"1,2,3"#)),
    (r#"{{join .Missing ","}}"#, D, Ok(r#""#)),
    (r#"{{join .Repository ","}}"#, D, Err(r#"template: :1:2: executing "" at <join .Repository ",">: error calling join: expected slice, got string"#)),
    (r#"{{.Names | split "," }}"#, D, Ok(r#"[,]"#)),
    (r#"{{index (split .Names ",") 1}}"#, D, Ok(r#"b"#)),
    (r#"{{pad .Tag 2 3}}|"#, D, Ok(r#"  latest   |"#)),
    (r#"{{pad .Empty 2 3}}|"#, D, Ok(r#"|"#)),
    (r#"{{truncate .Repository 3}}"#, D, Ok(r#"alp"#)),
    (r#"{{truncate .Repository 30}}"#, D, Ok(r#"alpine"#)),
    (r#"{{upper 1}}"#, D, Err(r#"template: :1:8: executing "" at <1>: expected string; found 1"#)),
    (r#"{{upper .Zero}}"#, D, Err(r#"template: :1:8: executing "" at <.Zero>: wrong type for value; expected string; got int"#)),
    (r#"{{upper .Missing}}"#, D, Err(r#"template: :1:8: executing "" at <.Missing>: invalid value; expected string"#)),
    (r#"{{upper nil}}"#, D, Err(r#"template: :1:8: executing "" at <nil>: cannot assign nil to string"#)),
    (r#"{{upper "a" "b"}}"#, D, Err(r#"template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 2"#)),
    (r#"{{index .Labels "maintainer"}}"#, D, Ok(r#"me"#)),
    (r#"{{index .RepoTags 1}}"#, D, Ok(r#"alpine:3"#)),
    (r#"{{index .RepoTags 5}}"#, D, Err(r#"template: :1:2: executing "" at <index .RepoTags 5>: error calling index: index out of range: 5"#)),
    (r#"{{index .Nested "A" "B"}}"#, D, Ok(r#"deep"#)),
    (r#"{{index .Repository 0}}"#, D, Ok(r#"97"#)),
    (r#"{{index .Zero 0}}"#, D, Err(r#"template: :1:2: executing "" at <index .Zero 0>: error calling index: can't index item of type int"#)),
    (r#"{{index .RepoTags "x"}}"#, D, Err(r#"template: :1:2: executing "" at <index .RepoTags "x">: error calling index: cannot index slice/array with type string"#)),
    (r#"{{index .Labels 1}}"#, D, Err(r#"template: :1:2: executing "" at <index .Labels 1>: error calling index: value has type int; should be string"#)),
    (r#"{{len .RepoTags}} {{len .Labels}} {{len .Repository}} {{len .Unicode}}"#, D, Ok(r#"2 2 6 13"#)),
    (r#"{{len .Zero}}"#, D, Err(r#"template: :1:2: executing "" at <len .Zero>: error calling len: len of type int"#)),
    (r#"{{slice .Repository 1 3}}"#, D, Ok(r#"lp"#)),
    (r#"{{slice .RepoTags 1}}"#, D, Ok(r#"[alpine:3]"#)),
    (r#"{{slice .Repository 3 1}}"#, D, Err(r#"template: :1:2: executing "" at <slice .Repository 3 1>: error calling slice: invalid slice index: 3 > 1"#)),
    (r#"{{slice .Repository 1 2 3}}"#, D, Err(r#"template: :1:2: executing "" at <slice .Repository 1 2 3>: error calling slice: cannot 3-index slice a string"#)),
    (r#"{{print 1 2 "a" "b" 3}}"#, D, Ok(r#"1 2ab3"#)),
    (r#"{{println .Tag 1}}"#, D, Ok(r#"latest 1
"#)),
    (r#"{{print}}"#, D, Ok(r#""#)),
    (r#"{{println}}"#, D, Ok(r#"
"#)),
    (r#"{{print .Missing}}"#, D, Ok(r#"<nil>"#)),
    (r#"{{printf "%s has %d tags" .Repository (len .RepoTags)}}"#, D, Ok(r#"alpine has 2 tags"#)),
    (r#"{{printf "%q" .Quote}}"#, D, Ok(r#""say \"hi\"\n""#)),
    (r#"{{printf "%v|%5s|%-5s|" .Mixed .Tag .Tag}}"#, D, Ok(r#"[1 two true 2.5 map[k:v] [1 2]]|latest|latest|"#)),
    (r#"{{printf "%d" .Repository}}"#, D, Ok(r#"%!d(string=alpine)"#)),
    (r#"{{printf "%s %s" .Tag}}"#, D, Ok(r#"latest %!s(MISSING)"#)),
    (r#"{{printf "%s" .Tag .Tag}}"#, D, Ok(r#"latest%!(EXTRA string=latest)"#)),
    (r#"{{printf "%.2f %e %g" .Float .Float .Float}}"#, D, Ok(r#"1.50 1.500000e+00 1.5"#)),
    (r#"{{printf "%x %X %o %08b %c %q %U" 255 255 8 5 65 66 9731}}"#, D, Ok(r#"ff FF 10 00000101 A 'B' U+2603"#)),
    (r#"{{printf "%05d|%+d|%-4d|" 42 42 42}}"#, D, Ok(r#"00042|+42|42  |"#)),
    (r#"{{printf "%t" .False}}"#, D, Ok(r#"false"#)),
    (r#"{{printf "%s" .RepoTags}}"#, D, Ok(r#"[alpine:latest alpine:3]"#)),
    (r#"{{printf "%q" .RepoTags}}"#, D, Ok(r#"["alpine:latest" "alpine:3"]"#)),
    (r#"{{printf "%v" .Labels}}"#, D, Ok(r#"map[maintainer:me org.opencontainers.image.title:x <y> & z]"#)),
    (r#"{{printf "%s" .Missing}}"#, D, Ok(r#"%!s(<nil>)"#)),
    (r#"{{printf "%d" .Float}}"#, D, Ok(r#"%!d(float64=1.5)"#)),
    (r#"{{printf "%6.2f|%-8.3f|" .Float .Float}}"#, D, Ok(r#"  1.50|1.500   |"#)),
    (r#"{{printf "%x" "hi"}}"#, D, Ok(r#"6869"#)),
    (r#"{{printf "%%"}}"#, D, Ok(r#"%"#)),
    (r#"{{printf "%!"}}"#, D, Ok(r#"%!!(MISSING)"#)),
    (r#"{{printf "%"}}"#, D, Ok(r#"%!(NOVERB)"#)),
    (r#"{{.Tag | printf "%s!"}}"#, D, Ok(r#"latest!"#)),
    (r#"{{if .Repository}}yes{{else}}no{{end}}"#, D, Ok(r#"yes"#)),
    (r#"{{if .Empty}}yes{{else}}no{{end}}"#, D, Ok(r#"no"#)),
    (r#"{{if .Zero}}y{{else}}n{{end}}{{if .False}}y{{else}}n{{end}}{{if .EmptyList}}y{{else}}n{{end}}{{if .EmptyMap}}y{{else}}n{{end}}{{if .Missing}}y{{else}}n{{end}}{{if .Float}}y{{else}}n{{end}}{{if .Neg}}y{{else}}n{{end}}"#, D, Ok(r#"nnnnnyy"#)),
    (r#"{{if .Empty}}a{{else if .Zero}}b{{else if .Tag}}c{{else}}d{{end}}"#, D, Ok(r#"c"#)),
    (r#"{{if and .Tag .Repository}}both{{end}}"#, D, Ok(r#"both"#)),
    (r#"{{and .Tag .Empty .Repository}}|{{or .Empty .Zero .Tag}}|{{or .Empty .Zero}}|{{and 1 2}}"#, D, Ok(r#"|latest|0|2"#)),
    (r#"{{if not .Empty}}not-empty{{end}}"#, D, Ok(r#"not-empty"#)),
    (r#"{{not .Tag}}"#, D, Ok(r#"false"#)),
    (r#"{{if eq .Tag "latest"}}L{{end}}{{if eq .Tag "a" "b" "latest"}}M{{end}}{{if ne .Tag "x"}}N{{end}}"#, D, Ok(r#"LMN"#)),
    (r#"{{eq .Zero 0}} {{eq 1 1}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}} {{eq .Missing .Missing}}"#, D, Ok(r#"true true true true true false true"#)),
    (r#"{{eq .Tag 1}}"#, D, Err(r#"template: :1:2: executing "" at <eq .Tag 1>: error calling eq: incompatible types for comparison"#)),
    (r#"{{lt .Labels 1}}"#, D, Err(r#"template: :1:2: executing "" at <lt .Labels 1>: error calling lt: invalid type for comparison"#)),
    (r#"{{lt true false}}"#, D, Err(r#"template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison"#)),
    (r#"{{eq .Tag}}"#, D, Err(r#"template: :1:2: executing "" at <eq .Tag>: error calling eq: missing argument for comparison"#)),
    (r#"{{eq .Float 1.5}}"#, D, Ok(r#"true"#)),
    (r#"{{lt .Neg 0}}"#, D, Ok(r#"true"#)),
    (r#"{{with .Nested}}{{.N}}{{end}}"#, D, Ok(r#"2"#)),
    (r#"{{with .Empty}}x{{else}}empty{{end}}"#, D, Ok(r#"empty"#)),
    (r#"{{with $x := .Tag}}{{$x}}{{.}}{{end}}"#, D, Ok(r#"latestlatest"#)),
    (r#"{{range .RepoTags}}[{{.}}]{{end}}"#, D, Ok(r#"[alpine:latest][alpine:3]"#)),
    (r#"{{range $i, $t := .RepoTags}}{{$i}}={{$t}} {{end}}"#, D, Ok(r#"0=alpine:latest 1=alpine:3 "#)),
    (r#"{{range $t := .RepoTags}}{{$t}},{{end}}"#, D, Ok(r#"alpine:latest,alpine:3,"#)),
    (r#"{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}"#, D, Ok(r#"maintainer=me;org.opencontainers.image.title=x <y> & z;"#)),
    (r#"{{range .Map}}{{.}}{{end}}"#, D, Ok(r#"123"#)),
    (r#"{{range .EmptyList}}x{{else}}none{{end}}"#, D, Ok(r#"none"#)),
    (r#"{{range .Missing}}x{{else}}none{{end}}"#, D, Ok(r#"none"#)),
    (r#"{{range .Repository}}x{{end}}"#, D, Err(r#"template: :1:8: executing "" at <.Repository>: range can't iterate over alpine"#)),
    (r#"{{range .Ints}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}"#, D, Ok(r#"32"#)),
    (r#"{{range .Ints}}{{if eq . 1}}{{break}}{{end}}{{.}}{{end}}"#, D, Ok(r#"3"#)),
    (r#"{{range .Cfg.Env}}{{.}} {{end}}"#, D, Ok(r#"A=1 B=2 "#)),
    (r#"{{range .}}{{.}}{{end}}"#, r#"[1,2]"#, Ok(r#"12"#)),
    (r#"{{range $i, $e := .Ints}}{{$i}}{{$e}}{{$.Tag}}{{end}}"#, D, Ok(r#"03latest11latest22latest"#)),
    (r#"{{range .RepoTags}}{{$.Repository}}{{end}}"#, D, Ok(r#"alpinealpine"#)),
    (r#"{{$x := .Tag}}{{$x}}"#, D, Ok(r#"latest"#)),
    (r#"{{$x := 1}}{{$x = 2}}{{$x}}"#, D, Ok(r#"2"#)),
    (r#"{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"#, D, Ok(r#"2"#)),
    (r#"{{$}}"#, r#""root""#, Ok(r#"root"#)),
    (r#"{{$.Tag}}"#, D, Ok(r#"latest"#)),
    (r#"{{$x := .Nested}}{{$x.A.B}}"#, D, Ok(r#"deep"#)),
    (r#"{{$y}}"#, D, Err(r#"template: :1: undefined variable "$y""#)),
    (r#"{{.Tag | upper | printf "<%s>"}}"#, D, Ok(r#"<LATEST>"#)),
    (r#"{{(index .Nested "A").B}}"#, D, Ok(r#"deep"#)),
    (r#"{{len (index .Cfg "Cmd")}}"#, D, Ok(r#"3"#)),
    (r#"{{.Tag | len}}"#, D, Ok(r#"6"#)),
    (r#"{{"a" | "b"}}"#, D, Err(r#"template: :1: non executable command in pipeline stage 2"#)),
    (r#"{{.Tag 1}}"#, D, Err(r#"template: :1:2: executing "" at <.Tag>: Tag is not a method but has arguments"#)),
    (r#"{{.Nested.N 1}}"#, D, Err(r#"template: :1:9: executing "" at <.Nested.N>: N is not a method but has arguments"#)),
    (r#"{{1 2}}"#, D, Err(r#"template: :1:2: executing "" at <1>: can't give argument to non-function 1"#)),
    (r#"{{nil}}"#, D, Err(r#"template: :1:2: executing "" at <nil>: nil is not a command"#)),
    (r#"{{.Tag | .Repository}}"#, D, Err(r#"template: :1:9: executing "" at <.Repository>: Repository is not a method but has arguments"#)),
    (r#"{{"a\tb\n\x41\u00e9\U0001F600\101"}}"#, D, Ok(r#"a	b
Aé😀A"#)),
    (r#"{{`raw\n`}}"#, D, Ok(r#"raw\n"#)),
    (r#"{{'a'}} {{'\n'}}"#, D, Ok(r#"97 10"#)),
    (r#"{{1.5}} {{-3}} {{0x1F}} {{1e3}} {{0o17}} {{017}} {{1_000}}"#, D, Ok(r#"1.5 -3 31 1000 15 15 1000"#)),
    (r#"{{true}} {{false}}"#, D, Ok(r#"true false"#)),
    (r#"{{"unterminated}}"#, D, Err(r#"template: :1: unterminated quoted string"#)),
    (r#"{{'ab'}}"#, D, Err(r#"template: :1: malformed character constant: 'ab'"#)),
    (r#"{{"\z"}}"#, D, Err(r#"template: :1: invalid syntax"#)),
    (r#"{{1.2.3}}"#, D, Err(r#"template: :1: unexpected ".3" in operand"#)),
    (r#"{{3abc}}"#, D, Err(r#"template: :1: bad number syntax: "3a""#)),
    (r#"{{0x}}"#, D, Err(r#"template: :1: illegal number syntax: "0x""#)),
    (r#"a  {{- .Tag -}}  b"#, D, Ok(r#"alatestb"#)),
    (r#"a
	{{- .Tag}}
"#, D, Ok(r#"alatest
"#)),
    (r#"{{.Tag -}}

 x"#, D, Ok(r#"latestx"#)),
    (r#"{{- .Tag}}"#, D, Ok(r#"latest"#)),
    (r#"x {{-3}}"#, D, Ok(r#"x -3"#)),
    (r#"{{ .Tag }}"#, D, Ok(r#"latest"#)),
    (r#"{{/* comment */}}a{{- /* c */ -}}  b"#, D, Ok(r#"ab"#)),
    (r#"a {{- /* c */}}"#, D, Ok(r#"a"#)),
    (r#"{{/* unclosed"#, D, Err(r#"template: :1: unclosed comment"#)),
    (r#"{{/* c */ x}}"#, D, Err(r#"template: :1: comment ends before closing delimiter"#)),
    (r#"{{foo}}"#, D, Err(r#"template: :1: function "foo" not defined"#)),
    (r#"{{.Tag | foo}}"#, D, Err(r#"template: :1: function "foo" not defined"#)),
    (r#"{{.Tag"#, D, Err(r#"template: :1: unclosed action"#)),
    (r#"{{.Tag

"#, D, Err(r#"template: :3: unclosed action started at :1"#)),
    (r#"{{if .Tag}}x"#, D, Err(r#"template: :1: unexpected EOF"#)),
    (r#"{{end}}"#, D, Err(r#"template: :1: unexpected {{end}}"#)),
    (r#"{{else}}"#, D, Err(r#"template: :1: unexpected {{else}}"#)),
    (r#"{{if}}{{end}}"#, D, Err(r#"template: :1: missing value for if"#)),
    (r#"{{range}}{{end}}"#, D, Err(r#"template: :1: missing value for range"#)),
    (r#"{{with}}{{end}}"#, D, Err(r#"template: :1: missing value for with"#)),
    (r#"{{if .A}}{{else}}{{else}}{{end}}"#, D, Err(r#"template: :1: expected end; found {{else}}"#)),
    (r#"{{}}"#, D, Err(r#"template: :1: missing value for command"#)),
    (r#"{{.Tag !}}"#, D, Err(r#"template: :1: unexpected "!" in operand"#)),
    (r#"{{.Tag ~}}"#, D, Err(r#"template: :1: unexpected "~" in operand"#)),
    (r#"{{(.Tag}}"#, D, Err(r#"template: :1: unclosed left paren"#)),
    (r#"{{.Tag)}}"#, D, Err(r#"template: :1: unexpected ")" in command"#)),
    (r#"{{.Tag | 1}}"#, D, Err(r#"template: :1: non executable command in pipeline stage 2"#)),
    (r#"{{break}}"#, D, Err(r#"template: :1: {{break}} outside {{range}}"#)),
    (r#"{{continue}}"#, D, Err(r#"template: :1: {{continue}} outside {{range}}"#)),
    (r#"{{range $a, $b, $c := .}}{{end}}"#, D, Err(r#"template: :1: too many declarations in range"#)),
    (r#"{{$x, $y := 1}}"#, D, Err(r#"template: :1: too many declarations in command"#)),
    (r#"{{.Tag.}}"#, D, Err(r#"template: :1: unexpected <.> in operand"#)),
    (r#"{{"a".B}}"#, D, Err(r#"template: :1: unexpected . after term "\"a\"""#)),
    (r#"{{.Tag:}}"#, D, Err(r#"template: :1: expected :="#)),
    (r#"{{$x:=1}}{{$x}}"#, D, Ok(r#"1"#)),
    (r#"{{.A-B}}"#, D, Err(r#"template: :1: bad character U+002D '-'"#)),
    (r#"{{.Tag.Sub}}"#, D, Err(r#"template: :1:6: executing "" at <.Tag.Sub>: can't evaluate field Sub in type interface {}"#)),
    (r#"{{.Ints.X}}"#, D, Err(r#"template: :1:7: executing "" at <.Ints.X>: can't evaluate field X in type interface {}"#)),
    (r#"line1
line2 {{foo}}"#, D, Err(r#"template: :2: function "foo" not defined"#)),
    (r#"{{if .A}}
{{foo}}
{{end}}"#, D, Err(r#"template: :2: function "foo" not defined"#)),
    (r#"{{.A
.B"#, D, Err(r#"template: :2: unclosed action started at :1"#)),
    (r#"{{if .Tag}}

x"#, D, Err(r#"template: :3: unexpected EOF"#)),
    (r#"{{index .RepoTags 1 2}}"#, D, Ok(r#"112"#)),
    (r#"{{index .Missing 1}}"#, D, Err(r#"template: :1:2: executing "" at <index .Missing 1>: error calling index: index of untyped nil"#)),
    (r#"{{slice .Missing}}"#, D, Err(r#"template: :1:2: executing "" at <slice .Missing>: error calling slice: slice of untyped nil"#)),
    (r#"{{html "<a href='x'>&"}} {{urlquery "a b&c=d/é"}} {{js "it's <b>"}}"#, D, Ok(r#"&lt;a href=&#39;x&#39;&gt;&amp; a+b%26c%3Dd%2F%C3%A9 it\'s \u003Cb\u003E"#)),
    (r#"{{html 1 2}}"#, D, Ok(r#"1 2"#)),
    (r#"{{print (html .Tag)}}"#, D, Ok(r#"latest"#)),
    (r#"{{.Cfg.Cmd}} {{json .Cfg.Cmd}} {{join .Cfg.Cmd " "}}"#, D, Ok(r#"[sh -c echo hi] ["sh","-c","echo hi"] sh -c echo hi"#)),
    (r#"{{range .Mixed}}{{.}};{{end}}"#, D, Ok(r#"1;two;true;2.5;map[k:v];[1 2];"#)),
    (r#"{{if .Tag}}{{.Tag}}{{end}} {{- " tail"}}"#, D, Ok(r#"latest tail"#)),
    (r#"{{ printf "%-12s|" .Repository }}"#, D, Ok(r#"alpine      |"#)),
    (r#"{{.Unicode | upper}} {{title .Unicode}}"#, D, Ok(r#"HÉLLO WÖRLD Héllo Wörld"#)),
    (r#"{{printf "%5.1q|%-8q|" "abc" "é"}}"#, D, Ok(r#"  "a"|"é"     |"#)),
    (r#"{{printf "%T" 1}}"#, D, Ok(r#"int"#)),
];

fn run(template: &str, data: &str) -> Result<String, String> {
    let data: Value = serde_json::from_str(data).expect("test data is JSON");
    Template::parse(template)
        .and_then(|t| t.execute(&data))
        .map_err(|e| e.to_string())
}

#[test]
fn matches_go_text_template() {
    let mut failures = Vec::new();
    for (template, data, want) in GO_CASES {
        let got = run(template, data);
        let want = want.map(str::to_string).map_err(str::to_string);
        if got != want {
            failures.push(format!("{template:?}\n   got: {got:?}\n  want: {want:?}"));
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

/// Where JSON loses Go's types, kiln takes Docker's typed behaviour.
#[test]
fn deliberate_differences_from_untyped_go() {
    // A float literal that is integral prints as an int.
    assert_eq!(
        run(r#"{{1e6}} {{printf "%v" 2.0}}"#, "{}").as_deref(),
        Ok("1000000 2")
    );
    // A missing label is "" (map[string]string), not <no value>.
    assert_eq!(run(r#"{{index .Labels "nope"}}|"#, D).as_deref(), Ok("|"));
    assert_eq!(
        run(r#"{{index .L "x"}}|"#, r#"{"L": null}"#).as_deref(),
        Ok("|")
    );
    assert_eq!(
        run(r#"{{index .L "x"}}|"#, r#"{"L": {}}"#).as_deref(),
        Ok("|")
    );
    assert_eq!(
        run(r#"{{index .L "x"}}|"#, r#"{"L": {"a": 1}}"#).as_deref(),
        Ok("<no value>|")
    );
    // A null is a nil map: its fields have no value (Go: nil pointer error).
    assert_eq!(
        run("{{.A.B}}", r#"{"A": null}"#).as_deref(),
        Ok("<no value>")
    );
    assert_eq!(run("{{.A}}", r#"{"A": null}"#).as_deref(), Ok("<no value>"));
    assert_eq!(
        run("{{print .A}}", r#"{"A": null}"#).as_deref(),
        Ok("<nil>")
    );
    // len of nothing.
    assert_eq!(
        run("{{len .Missing}}", "{}"),
        Err(r#"template: :1:2: executing "" at <len .Missing>: error calling len: len of nil pointer"#.into())
    );
}

#[test]
fn newer_go_features() {
    // Go 1.22: range over an integer.
    assert_eq!(run("{{range 3}}{{.}}{{end}}", "{}").as_deref(), Ok("012"));
    assert_eq!(
        run("{{range $i := 2}}[{{$i}}]{{end}}", "{}").as_deref(),
        Ok("[0][1]")
    );
    assert_eq!(
        run("{{range 0}}x{{else}}none{{end}}", "{}").as_deref(),
        Ok("none")
    );
    // Go 1.23: else with.
    assert_eq!(
        run(
            "{{with .A}}a{{else with .B}}b={{.}}{{else}}none{{end}}",
            r#"{"B": 2}"#
        )
        .as_deref(),
        Ok("b=2")
    );
    assert_eq!(
        run("{{with .A}}a{{else with .B}}b{{else}}none{{end}}", "{}").as_deref(),
        Ok("none")
    );
    assert_eq!(
        run("{{if .A}}a{{else with .B}}b{{end}}", "{}"),
        Err("template: :1: unexpected <with> in input".into())
    );
}

#[test]
fn unsupported_actions_are_parse_errors() {
    for (t, what) in [
        (r#"{{template "x"}}"#, "{{template}}"),
        (r#"{{define "x"}}{{end}}"#, "{{define}}"),
        (r#"{{block "x" .}}{{end}}"#, "{{block}}"),
        ("{{1+2i}}", "complex numbers"),
    ] {
        assert_eq!(
            run(t, "{}"),
            Err(format!("template: :1: {what} is not supported")),
            "{t}"
        );
    }
    assert_eq!(
        run("{{call .F}}", "{}"),
        Err(r#"template: :1: function "call" not defined"#.into())
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{{{{{}.{}}}}}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(
        run(&deep, "{}"),
        Err("template: :1: max expression depth exceeded".into())
    );
    let ifs = format!("{}x{}", "{{if 1}}".repeat(2000), "{{end}}".repeat(2000));
    assert_eq!(
        run(&ifs, "{}"),
        Err("template: :1: max expression depth exceeded".into())
    );
    let ok = format!(
        "{}x{}",
        "{{if 1}}".repeat(MAX_DEPTH),
        "{{end}}".repeat(MAX_DEPTH)
    );
    assert_eq!(run(&ok, "{}").as_deref(), Ok("x"));
    let ok = format!(
        "{{{{{}1{}}}}}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert_eq!(run(&ok, "{}").as_deref(), Ok("1"));
}

#[test]
fn exec_error_positions_count_lines_and_bytes() {
    assert_eq!(
        run("line one\n  {{.A.B}}", r#"{"A": "s"}"#),
        Err(r#"template: :2:6: executing "" at <.A.B>: can't evaluate field B in type interface {}"#.into())
    );
    assert_eq!(
        run("{{$x := 1}}{{$y = 2}}", "{}"),
        Err(r#"template: :1:18: executing "" at <2>: undefined variable: $y"#.into())
    );
}

#[test]
fn typed_errors() {
    let err = Template::parse("{{foo}}").expect_err("unknown function");
    assert!(matches!(
        err,
        TemplateError::Parse { line: 1, kind: ParseErrorKind::FunctionNotDefined(ref f), .. } if f == "foo"
    ));
    let t = Template::parse("{{index .A 3}}").expect("parses");
    let err = t.execute(&json!({"A": [1]})).expect_err("out of range");
    assert!(matches!(
        err,
        TemplateError::Exec {
            line: 1,
            column: 2,
            kind: ExecErrorKind::Call {
                source: CallError::IndexOutOfRange(3),
                ..
            },
            ..
        }
    ));
}

#[test]
fn header_row_uses_titles_and_passes_functions_through() {
    let titles = [("ID", "IMAGE ID"), ("CreatedSince", "CREATED")];
    let header = |t: &str| Template::parse(t).expect("parses").execute_header(&titles);
    assert_eq!(header("{{.ID}}\t{{.Repository}}"), "IMAGE ID\tREPOSITORY");
    assert_eq!(
        header("{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}"),
        "CREATED"
    );
    assert_eq!(
        header("{{upper .ID}}|{{json .Labels}}|{{truncate .ID 2}}|{{lower .ID}}|{{title .ID}}"),
        "IMAGE ID|LABELS|IMAGE ID|IMAGE ID|IMAGE ID"
    );
    assert_eq!(
        header(r#"{{join .Names ","}}|{{split .Names ","}}"#),
        "NAMES|NAMES"
    );
    // Docker's quirk: a piped value is the last argument, so the header
    // function returns the separator.
    assert_eq!(header(r#"{{.Names | join ","}}"#), ",");
    assert_eq!(header("{{.Config.Labels}}"), "CONFIG");
    assert_eq!(header(r#"{{printf "%-9s|" .ID}}"#), "IMAGE ID |");
    assert_eq!(header("{{$.ID}}"), "IMAGE ID");
    // An error ends the header where it happened, as in Docker.
    assert_eq!(
        header("{{.ID}} {{range .Mounts}}{{.}}{{end}} {{.ID}}"),
        "IMAGE ID "
    );
}

#[test]
fn trim_markers_need_a_space() {
    assert_eq!(run("a {{-3}} b", "{}").as_deref(), Ok("a -3 b"));
    assert_eq!(run("a {{- 3}} b", "{}").as_deref(), Ok("a3 b"));
    assert_eq!(run("a {{3 -}} b", "{}").as_deref(), Ok("a 3b"));
    assert_eq!(run("a\r\n\t {{- 3 -}} \n\tb", "{}").as_deref(), Ok("a3b"));
    assert_eq!(run("{{- /* only a comment */ -}}", "{}").as_deref(), Ok(""));
}

#[test]
fn string_literals_follow_go_escapes() {
    assert_eq!(
        run(r#"{{"\a\b\f\v\\\""}}"#, "{}").as_deref(),
        Ok("\u{7}\u{8}\u{c}\u{b}\\\"")
    );
    assert_eq!(run("{{`a\r\nb`}}", "{}").as_deref(), Ok("a\nb"));
    assert_eq!(
        run(r#"{{"\u00e9\U0001F433\x41\101"}}"#, "{}").as_deref(),
        Ok("é🐳AA")
    );
    assert_eq!(run(r#"{{'\''}}{{'é'}}"#, "{}").as_deref(), Ok("39233"));
    assert_eq!(
        run(r#"{{"\'"}}"#, "{}"),
        Err("template: :1: invalid syntax".into())
    );
    assert_eq!(
        run(r#"{{"\uD800"}}"#, "{}"),
        Err("template: :1: invalid syntax".into())
    );
    assert_eq!(
        run("{{`unterminated}}", "{}"),
        Err("template: :1: unterminated raw quoted string".into())
    );
}

#[test]
fn variables_are_scoped_to_their_control() {
    assert_eq!(
        run(
            "{{with .A}}{{$x := 1}}{{$x}}{{end}}{{$x := 2}}{{$x}}",
            r#"{"A": 1}"#
        )
        .as_deref(),
        Ok("12")
    );
    assert_eq!(
        run("{{with .A}}{{$x := 1}}{{end}}{{$x}}", r#"{"A": 1}"#),
        Err(r#"template: :1: undefined variable "$x""#.into())
    );
    assert_eq!(
        run("{{range $i, $e := .}}{{end}}{{$i}}", "[1]"),
        Err(r#"template: :1: undefined variable "$i""#.into())
    );
}

#[test]
fn break_and_continue_reach_through_ifs() {
    assert_eq!(
        run(
            "{{range .}}{{if gt . 2}}{{if true}}{{break}}{{end}}{{end}}{{.}}{{end}}",
            "[1,2,3,4]"
        )
        .as_deref(),
        Ok("12")
    );
    assert_eq!(
        run(
            "{{range .}}{{with .}}{{continue}}{{end}}x{{end}}",
            "[1,0,2]"
        )
        .as_deref(),
        Ok("x")
    );
}

#[test]
fn long_unexpected_tokens_are_cut_like_go() {
    assert_eq!(
        run(r#"{{if .A}}{{else "a long string here"}}{{end}}"#, "{}"),
        Err(r#"template: :1: unexpected "\"a long st"... in else"#.into())
    );
}

/// Random splices of template fragments: whatever the input, parsing and
/// running end in output or an error, never a panic.
#[test]
fn random_templates_never_panic() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        " -}}",
        " ",
        "\n",
        ".",
        ".A",
        ".B.C",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        ",",
        "\"s\"",
        "\"\\",
        "`r`",
        "'c'",
        "'",
        "1",
        "-2",
        "0x",
        "1e",
        "1.5",
        "true",
        "nil",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "continue",
        "json",
        "index",
        "len",
        "slice",
        "printf",
        "\"%d%s%\"",
        "print",
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "split",
        "join",
        "upper",
        "pad",
        "truncate",
        "html",
        "js",
        "urlquery",
        "/*",
        "*/",
        "é",
        "\t",
        "{",
        "}",
        "-",
        "!",
        "\u{0}",
    ];
    let data = json!({"A": [1, "x", null, {"k": 2.5}], "B": {"C": "s"}, "N": null});
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let n = next() % 24;
        let mut t = String::new();
        for _ in 0..n {
            t.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        if let Ok(tmpl) = Template::parse(&t) {
            let _ = tmpl.execute(&data);
            let _ = tmpl.execute_header(&[("A", "AA")]);
        }
    }
}

#[test]
fn pad_and_truncate_refuse_bad_counts() {
    let err = |t: &str| run(t, r#"{"A": "ab"}"#).expect_err("fails");
    assert!(err("{{pad .A -1 0}}").ends_with("error calling pad: strings: negative Repeat count"));
    assert!(err("{{pad .A 0 99999999999}}")
        .ends_with("error calling pad: pad count 99999999999 is over 1048576"));
    assert!(err("{{truncate .A -1}}")
        .ends_with("error calling truncate: runtime error: slice bounds out of range [:-1]"));
    assert_eq!(
        run(
            "{{truncate .A 1}}|{{truncate .A 2}}|{{truncate .A 3}}",
            r#"{"A": "ab"}"#
        )
        .as_deref(),
        Ok("a|ab|ab")
    );
    // Go cuts bytes; kiln keeps whole characters.
    assert_eq!(
        run("{{truncate .A 2}}", r#"{"A": "éa"}"#).as_deref(),
        Ok("é")
    );
    assert_eq!(
        run("{{truncate .A 1}}", r#"{"A": "éa"}"#).as_deref(),
        Ok("")
    );
}
