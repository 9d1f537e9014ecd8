//! Tabwriter tests. `GO_CASES` are Go 1.19's `text/tabwriter` outputs for
//! the same input and settings (ASCII and Latin text, where Go's rune
//! count and Docker's display width agree).

use super::*;

fn docker(text: &str) -> String {
    align(text, TabConfig::DOCKER)
}

fn cfg(min_width: usize, tab_width: usize, padding: usize, pad_char: u8) -> TabConfig {
    TabConfig {
        min_width,
        tab_width,
        padding,
        pad_char,
        align_right: false,
        discard_empty_columns: false,
    }
}

#[test]
fn tables_are_sorted_and_disjoint() {
    for table in [ZERO_WIDTH, DOUBLE_WIDTH] {
        for w in table.windows(2) {
            assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:x?}");
        }
    }
}

#[test]
fn docker_image_table() {
    let text = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n\
                alpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\n\
                registry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n";
    let want = "\
REPOSITORY                      TAG       IMAGE ID       CREATED        SIZE
alpine                          latest    0123456789ab   2 weeks ago    7.8MB
registry.example.com/team/app   v1.2.3    ba9876543210   3 months ago   155MB
";
    assert_eq!(docker(text), want);
}

#[test]
fn min_width_applies_to_short_columns() {
    assert_eq!(docker("a\tb\n"), "a         b\n");
    assert_eq!(docker("\tb\n"), "          b\n");
}

#[test]
fn trailing_text_is_not_a_column() {
    assert_eq!(
        docker("a\tlong trailing text\nbb\tc\n"),
        "a         long trailing text\nbb        c\n"
    );
}

#[test]
fn a_line_without_tabs_breaks_the_block() {
    let got = docker("aaaaaaaaaaaaaaaa\tb\nno tabs here\nc\td\n");
    assert_eq!(got, "aaaaaaaaaaaaaaaa   b\nno tabs here\nc         d\n");
}

#[test]
fn columns_are_blocks_of_consecutive_cells() {
    // Go's doc example: the b and c columns are distinct blocks.
    let c = cfg(0, 8, 1, b'.');
    let got = align("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", c);
    assert_eq!(got, "aaaa.bbb.d\naa...b...dd\na....\naa...cccc.eee\n");
}

#[test]
fn unterminated_last_line_is_kept_without_newline() {
    assert_eq!(docker("a\tb\nccc\tdd"), "a         b\nccc       dd");
}

#[test]
fn empty_input_and_empty_lines() {
    assert_eq!(docker(""), "");
    assert_eq!(docker("\n\n"), "\n\n");
}

#[test]
fn tab_padding_rounds_to_tab_width() {
    let c = cfg(0, 8, 1, b'\t');
    assert_eq!(align("a\tb\nabcdefghij\tc\n", c), "a\t\tb\nabcdefghij\tc\n");
}

#[test]
fn align_right() {
    let c = TabConfig {
        align_right: true,
        ..cfg(0, 1, 1, b' ')
    };
    assert_eq!(align("a\tb\nccc\td\n", c), "   ab\n cccd\n");
}

#[test]
fn discard_empty_soft_columns() {
    let c = TabConfig {
        discard_empty_columns: true,
        ..cfg(0, 1, 1, b' ')
    };
    assert_eq!(align("a\x0b\x0bb\nc\x0b\x0bd\n", c), "a b\nc d\n");
}

#[test]
fn form_feed_ends_the_block() {
    assert_eq!(
        docker("aaaaaaaaaaaaaaaa\tb\x0cc\td\n"),
        "aaaaaaaaaaaaaaaa   b\nc         d\n"
    );
}

#[test]
fn streaming_flushes_at_lines_without_tabs() {
    let mut w = TabWriter::new(Vec::new(), TabConfig::DOCKER);
    w.write_all(b"a\tb\n").expect("vec write");
    assert!(w.out.is_empty(), "a column may still grow");
    w.write_all(b"done\n").expect("vec write");
    assert_eq!(w.out, b"a         b\ndone\n");
    w.write_all(b"x\ty").expect("vec write");
    w.flush().expect("vec flush");
    assert_eq!(w.out, b"a         b\ndone\nx         y");
}

#[test]
fn writes_split_anywhere_give_the_same_output() {
    let text = "héllo\twörld\tx\nab\tc\td\n";
    let whole = docker(text);
    for split in 1..text.len() {
        let mut w = TabWriter::new(Vec::new(), TabConfig::DOCKER);
        w.write_all(&text.as_bytes()[..split]).expect("vec write");
        w.write_all(&text.as_bytes()[split..]).expect("vec write");
        let out = w.into_inner().expect("vec flush");
        assert_eq!(String::from_utf8_lossy(&out), whole, "split at {split}");
    }
}

#[test]
fn wide_characters_take_two_columns() {
    assert_eq!(display_width("abc"), 3);
    assert_eq!(display_width("日本語"), 6);
    assert_eq!(display_width("ｆｕｌｌ"), 8);
    assert_eq!(display_width("e\u{301}"), 1);
    assert_eq!(display_width("🐳"), 2);
    assert_eq!(display_width("👍🏽"), 2);
    assert_eq!(display_width("👨\u{200d}👩\u{200d}👧"), 2);
    assert_eq!(display_width("🇫🇷"), 2);
    assert_eq!(display_width("a\u{200b}b"), 2);
    assert_eq!(display_width("\x1b"), 0);
    assert_eq!(docker("日本\tx\nab\ty\n"), "日本      x\nab        y\n");
}

/// (input, min width, tab width, padding, pad char, flags, Go's output);
/// flags as Go's: 4 = AlignRight, 8 = DiscardEmptyColumns.
#[rustfmt::skip]
const GO_CASES: &[(&str, usize, usize, usize, u8, u32, &str)] = &[
    ("", 10, 1, 3, b' ', 0, ""),
    ("", 0, 8, 1, b'.', 0, ""),
    ("", 0, 8, 1, b'\t', 0, ""),
    ("", 0, 1, 1, b' ', 4, ""),
    ("", 0, 1, 1, b' ', 8, ""),
    ("", 5, 4, 2, b'-', 0, ""),
    ("", 0, 4, 0, b'\t', 0, ""),
    ("", 3, 1, 0, b' ', 12, ""),
    ("a", 10, 1, 3, b' ', 0, "a"),
    ("a", 0, 8, 1, b'.', 0, "a"),
    ("a", 0, 8, 1, b'\t', 0, "a"),
    ("a", 0, 1, 1, b' ', 4, "a"),
    ("a", 0, 1, 1, b' ', 8, "a"),
    ("a", 5, 4, 2, b'-', 0, "a"),
    ("a", 0, 4, 0, b'\t', 0, "a"),
    ("a", 3, 1, 0, b' ', 12, "a"),
    ("a\n", 10, 1, 3, b' ', 0, "a\n"),
    ("a\n", 0, 8, 1, b'.', 0, "a\n"),
    ("a\n", 0, 8, 1, b'\t', 0, "a\n"),
    ("a\n", 0, 1, 1, b' ', 4, "a\n"),
    ("a\n", 0, 1, 1, b' ', 8, "a\n"),
    ("a\n", 5, 4, 2, b'-', 0, "a\n"),
    ("a\n", 0, 4, 0, b'\t', 0, "a\n"),
    ("a\n", 3, 1, 0, b' ', 12, "a\n"),
    ("\n\n\n", 10, 1, 3, b' ', 0, "\n\n\n"),
    ("\n\n\n", 0, 8, 1, b'.', 0, "\n\n\n"),
    ("\n\n\n", 0, 8, 1, b'\t', 0, "\n\n\n"),
    ("\n\n\n", 0, 1, 1, b' ', 4, "\n\n\n"),
    ("\n\n\n", 0, 1, 1, b' ', 8, "\n\n\n"),
    ("\n\n\n", 5, 4, 2, b'-', 0, "\n\n\n"),
    ("\n\n\n", 0, 4, 0, b'\t', 0, "\n\n\n"),
    ("\n\n\n", 3, 1, 0, b' ', 12, "\n\n\n"),
    ("a\tb", 10, 1, 3, b' ', 0, "a         b"),
    ("a\tb", 0, 8, 1, b'.', 0, "a.b"),
    ("a\tb", 0, 8, 1, b'\t', 0, "a\tb"),
    ("a\tb", 0, 1, 1, b' ', 4, " ab"),
    ("a\tb", 0, 1, 1, b' ', 8, "a b"),
    ("a\tb", 5, 4, 2, b'-', 0, "a----b"),
    ("a\tb", 0, 4, 0, b'\t', 0, "a\tb"),
    ("a\tb", 3, 1, 0, b' ', 12, "  ab"),
    ("a\tb\n", 10, 1, 3, b' ', 0, "a         b\n"),
    ("a\tb\n", 0, 8, 1, b'.', 0, "a.b\n"),
    ("a\tb\n", 0, 8, 1, b'\t', 0, "a\tb\n"),
    ("a\tb\n", 0, 1, 1, b' ', 4, " ab\n"),
    ("a\tb\n", 0, 1, 1, b' ', 8, "a b\n"),
    ("a\tb\n", 5, 4, 2, b'-', 0, "a----b\n"),
    ("a\tb\n", 0, 4, 0, b'\t', 0, "a\tb\n"),
    ("a\tb\n", 3, 1, 0, b' ', 12, "  ab\n"),
    ("a\tb\tc\n", 10, 1, 3, b' ', 0, "a         b         c\n"),
    ("a\tb\tc\n", 0, 8, 1, b'.', 0, "a.b.c\n"),
    ("a\tb\tc\n", 0, 8, 1, b'\t', 0, "a\tb\tc\n"),
    ("a\tb\tc\n", 0, 1, 1, b' ', 4, " a bc\n"),
    ("a\tb\tc\n", 0, 1, 1, b' ', 8, "a b c\n"),
    ("a\tb\tc\n", 5, 4, 2, b'-', 0, "a----b----c\n"),
    ("a\tb\tc\n", 0, 4, 0, b'\t', 0, "a\tb\tc\n"),
    ("a\tb\tc\n", 3, 1, 0, b' ', 12, "  a  bc\n"),
    ("a\tb\tc", 10, 1, 3, b' ', 0, "a         b         c"),
    ("a\tb\tc", 0, 8, 1, b'.', 0, "a.b.c"),
    ("a\tb\tc", 0, 8, 1, b'\t', 0, "a\tb\tc"),
    ("a\tb\tc", 0, 1, 1, b' ', 4, " a bc"),
    ("a\tb\tc", 0, 1, 1, b' ', 8, "a b c"),
    ("a\tb\tc", 5, 4, 2, b'-', 0, "a----b----c"),
    ("a\tb\tc", 0, 4, 0, b'\t', 0, "a\tb\tc"),
    ("a\tb\tc", 3, 1, 0, b' ', 12, "  a  bc"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 10, 1, 3, b' ', 0, "REPOSITORY                      TAG       IMAGE ID       CREATED        SIZE\nalpine                          latest    0123456789ab   2 weeks ago    7.8MB\nregistry.example.com/team/app   v1.2.3    ba9876543210   3 months ago   155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 0, 8, 1, b'.', 0, "REPOSITORY....................TAG....IMAGE ID.....CREATED......SIZE\nalpine........................latest.0123456789ab.2 weeks ago..7.8MB\nregistry.example.com/team/app.v1.2.3.ba9876543210.3 months ago.155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 0, 8, 1, b'\t', 0, "REPOSITORY\t\t\tTAG\tIMAGE ID\tCREATED\t\tSIZE\nalpine\t\t\t\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 0, 1, 1, b' ', 4, "                    REPOSITORY    TAG     IMAGE ID      CREATEDSIZE\n                        alpine latest 0123456789ab  2 weeks ago7.8MB\n registry.example.com/team/app v1.2.3 ba9876543210 3 months ago155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 0, 1, 1, b' ', 8, "REPOSITORY                    TAG    IMAGE ID     CREATED      SIZE\nalpine                        latest 0123456789ab 2 weeks ago  7.8MB\nregistry.example.com/team/app v1.2.3 ba9876543210 3 months ago 155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 5, 4, 2, b'-', 0, "REPOSITORY---------------------TAG-----IMAGE ID------CREATED-------SIZE\nalpine-------------------------latest--0123456789ab--2 weeks ago---7.8MB\nregistry.example.com/team/app--v1.2.3--ba9876543210--3 months ago--155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 0, 4, 0, b'\t', 0, "REPOSITORY\t\t\t\t\t\tTAG\t\tIMAGE ID\tCREATED\t\tSIZE\nalpine\t\t\t\t\t\t\tlatest\t0123456789ab2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba98765432103 months ago155MB\n"),
    ("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nalpine\tlatest\t0123456789ab\t2 weeks ago\t7.8MB\nregistry.example.com/team/app\tv1.2.3\tba9876543210\t3 months ago\t155MB\n", 3, 1, 0, b' ', 12, "                   REPOSITORY   TAG    IMAGE ID     CREATEDSIZE\n                       alpinelatest0123456789ab 2 weeks ago7.8MB\nregistry.example.com/team/appv1.2.3ba98765432103 months ago155MB\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 10, 1, 3, b' ', 0, "aaaa      bbb       d\naa        b         dd\na         \naa        cccc      eee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 0, 8, 1, b'.', 0, "aaaa.bbb.d\naa...b...dd\na....\naa...cccc.eee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 0, 8, 1, b'\t', 0, "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 0, 1, 1, b' ', 4, " aaaa bbbd\n   aa   bdd\n    a\n   aa cccceee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 0, 1, 1, b' ', 8, "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 5, 4, 2, b'-', 0, "aaaa--bbb--d\naa----b----dd\na-----\naa----cccc--eee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 0, 4, 0, b'\t', 0, "aaaabbb\td\naa\tb\tdd\na\t\naa\tcccceee\n"),
    ("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 3, 1, 0, b' ', 12, "aaaabbbd\n  aa  bdd\n   a\n  aacccceee\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 10, 1, 3, b' ', 0, "x         y\nno tabs\nlonger cell here   z\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 0, 8, 1, b'.', 0, "x.y\nno tabs\nlonger cell here.z\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 0, 8, 1, b'\t', 0, "x\ty\nno tabs\nlonger cell here\tz\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 0, 1, 1, b' ', 4, " xy\nno tabs\n longer cell herez\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 0, 1, 1, b' ', 8, "x y\nno tabs\nlonger cell here z\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 5, 4, 2, b'-', 0, "x----y\nno tabs\nlonger cell here--z\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 0, 4, 0, b'\t', 0, "x\ty\nno tabs\nlonger cell herez\n"),
    ("x\ty\nno tabs\nlonger cell here\tz\n", 3, 1, 0, b' ', 12, "  xy\nno tabs\nlonger cell herez\n"),
    ("\t\t\n\t\tx\n", 10, 1, 3, b' ', 0, "                    \n                    x\n"),
    ("\t\t\n\t\tx\n", 0, 8, 1, b'.', 0, "..\n..x\n"),
    ("\t\t\n\t\tx\n", 0, 8, 1, b'\t', 0, "\t\t\n\t\tx\n"),
    ("\t\t\n\t\tx\n", 0, 1, 1, b' ', 4, "  \n  x\n"),
    ("\t\t\n\t\tx\n", 0, 1, 1, b' ', 8, "  \n  x\n"),
    ("\t\t\n\t\tx\n", 5, 4, 2, b'-', 0, "----------\n----------x\n"),
    ("\t\t\n\t\tx\n", 0, 4, 0, b'\t', 0, "\nx\n"),
    ("\t\t\n\t\tx\n", 3, 1, 0, b' ', 12, "      \n      x\n"),
    ("a\t\tb\nccc\t\td\n", 10, 1, 3, b' ', 0, "a                   b\nccc                 d\n"),
    ("a\t\tb\nccc\t\td\n", 0, 8, 1, b'.', 0, "a....b\nccc..d\n"),
    ("a\t\tb\nccc\t\td\n", 0, 8, 1, b'\t', 0, "a\t\tb\nccc\t\td\n"),
    ("a\t\tb\nccc\t\td\n", 0, 1, 1, b' ', 4, "   a b\n ccc d\n"),
    ("a\t\tb\nccc\t\td\n", 0, 1, 1, b' ', 8, "a    b\nccc  d\n"),
    ("a\t\tb\nccc\t\td\n", 5, 4, 2, b'-', 0, "a---------b\nccc-------d\n"),
    ("a\t\tb\nccc\t\td\n", 0, 4, 0, b'\t', 0, "a\tb\nccc\td\n"),
    ("a\t\tb\nccc\t\td\n", 3, 1, 0, b' ', 12, "  a   b\nccc   d\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 10, 1, 3, b' ', 0, "one       two\nthree\n\nfour      five\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 0, 8, 1, b'.', 0, "one.two\nthree\n\nfour.five\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 0, 8, 1, b'\t', 0, "one\ttwo\nthree\n\nfour\tfive\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 0, 1, 1, b' ', 4, " onetwo\nthree\n\n fourfive\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 0, 1, 1, b' ', 8, "one two\nthree\n\nfour five\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 5, 4, 2, b'-', 0, "one--two\nthree\n\nfour--five\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 0, 4, 0, b'\t', 0, "one\ttwo\nthree\n\nfourfive\n"),
    ("one\ttwo\nthree\n\nfour\tfive\n", 3, 1, 0, b' ', 12, "onetwo\nthree\n\nfourfive\n"),
    ("a\tb\nccc\tdd", 10, 1, 3, b' ', 0, "a         b\nccc       dd"),
    ("a\tb\nccc\tdd", 0, 8, 1, b'.', 0, "a...b\nccc.dd"),
    ("a\tb\nccc\tdd", 0, 8, 1, b'\t', 0, "a\tb\nccc\tdd"),
    ("a\tb\nccc\tdd", 0, 1, 1, b' ', 4, "   ab\n cccdd"),
    ("a\tb\nccc\tdd", 0, 1, 1, b' ', 8, "a   b\nccc dd"),
    ("a\tb\nccc\tdd", 5, 4, 2, b'-', 0, "a----b\nccc--dd"),
    ("a\tb\nccc\tdd", 0, 4, 0, b'\t', 0, "a\tb\nccc\tdd"),
    ("a\tb\nccc\tdd", 3, 1, 0, b' ', 12, "  ab\ncccdd"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 10, 1, 3, b' ', 0, "1         2         3\n1         2\n1\n1         2         3         4\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 0, 8, 1, b'.', 0, "1.2.3\n1.2\n1\n1.2.3.4\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 0, 8, 1, b'\t', 0, "1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 0, 1, 1, b' ', 4, " 1 23\n 12\n1\n 1 2 34\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 0, 1, 1, b' ', 8, "1 2 3\n1 2\n1\n1 2 3 4\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 5, 4, 2, b'-', 0, "1----2----3\n1----2\n1\n1----2----3----4\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 0, 4, 0, b'\t', 0, "1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n"),
    ("1\t2\t3\n1\t2\n1\n1\t2\t3\t4\n", 3, 1, 0, b' ', 12, "  1  23\n  12\n1\n  1  2  34\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 10, 1, 3, b' ', 0, "a         b         c\nd         e         f\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 0, 8, 1, b'.', 0, "a.b.c\nd.e.f\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 0, 8, 1, b'\t', 0, "a\tb\tc\nd\te\tf\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 0, 1, 1, b' ', 4, " a bc\n d ef\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 0, 1, 1, b' ', 8, "a b c\nd e f\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 5, 4, 2, b'-', 0, "a----b----c\nd----e----f\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 0, 4, 0, b'\t', 0, "a\tb\tc\nd\te\tf\n"),
    ("a\u{b}b\u{b}c\nd\u{b}e\u{b}f\n", 3, 1, 0, b' ', 12, "  a  bc\n  d  ef\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 10, 1, 3, b' ', 0, "a                   b\nc                   d\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 0, 8, 1, b'.', 0, "a..b\nc..d\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 0, 8, 1, b'\t', 0, "a\t\tb\nc\t\td\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 0, 1, 1, b' ', 4, " a b\n c d\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 0, 1, 1, b' ', 8, "a b\nc d\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 5, 4, 2, b'-', 0, "a---------b\nc---------d\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 0, 4, 0, b'\t', 0, "a\tb\nc\td\n"),
    ("a\u{b}\u{b}b\nc\u{b}\u{b}d\n", 3, 1, 0, b' ', 12, "  ab\n  cd\n"),
    ("a\t\tb\nc\t\td\n", 10, 1, 3, b' ', 0, "a                   b\nc                   d\n"),
    ("a\t\tb\nc\t\td\n", 0, 8, 1, b'.', 0, "a..b\nc..d\n"),
    ("a\t\tb\nc\t\td\n", 0, 8, 1, b'\t', 0, "a\t\tb\nc\t\td\n"),
    ("a\t\tb\nc\t\td\n", 0, 1, 1, b' ', 4, " a b\n c d\n"),
    ("a\t\tb\nc\t\td\n", 0, 1, 1, b' ', 8, "a  b\nc  d\n"),
    ("a\t\tb\nc\t\td\n", 5, 4, 2, b'-', 0, "a---------b\nc---------d\n"),
    ("a\t\tb\nc\t\td\n", 0, 4, 0, b'\t', 0, "a\tb\nc\td\n"),
    ("a\t\tb\nc\t\td\n", 3, 1, 0, b' ', 12, "  a   b\n  c   d\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 10, 1, 3, b' ', 0, "aaaaaaaaaaaaaaaa   b\nc         d\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 0, 8, 1, b'.', 0, "aaaaaaaaaaaaaaaa.b\nc.d\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 0, 8, 1, b'\t', 0, "aaaaaaaaaaaaaaaa\tb\nc\td\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 0, 1, 1, b' ', 4, " aaaaaaaaaaaaaaaab\n cd\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 0, 1, 1, b' ', 8, "aaaaaaaaaaaaaaaa b\nc d\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 5, 4, 2, b'-', 0, "aaaaaaaaaaaaaaaa--b\nc----d\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 0, 4, 0, b'\t', 0, "aaaaaaaaaaaaaaaab\nc\td\n"),
    ("aaaaaaaaaaaaaaaa\tb\u{c}c\td\n", 3, 1, 0, b' ', 12, "aaaaaaaaaaaaaaaab\n  cd\n"),
    ("h\tx\u{c}a\tb\n", 10, 1, 3, b' ', 0, "h         x\na         b\n"),
    ("h\tx\u{c}a\tb\n", 0, 8, 1, b'.', 0, "h.x\na.b\n"),
    ("h\tx\u{c}a\tb\n", 0, 8, 1, b'\t', 0, "h\tx\na\tb\n"),
    ("h\tx\u{c}a\tb\n", 0, 1, 1, b' ', 4, " hx\n ab\n"),
    ("h\tx\u{c}a\tb\n", 0, 1, 1, b' ', 8, "h x\na b\n"),
    ("h\tx\u{c}a\tb\n", 5, 4, 2, b'-', 0, "h----x\na----b\n"),
    ("h\tx\u{c}a\tb\n", 0, 4, 0, b'\t', 0, "h\tx\na\tb\n"),
    ("h\tx\u{c}a\tb\n", 3, 1, 0, b' ', 12, "  hx\n  ab\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 10, 1, 3, b' ', 0, "héllo     wörld     x\nab        c         d\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 0, 8, 1, b'.', 0, "héllo.wörld.x\nab....c.....d\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 0, 8, 1, b'\t', 0, "héllo\twörld\tx\nab\tc\td\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 0, 1, 1, b' ', 4, " héllo wörldx\n    ab     cd\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 0, 1, 1, b' ', 8, "héllo wörld x\nab    c     d\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 5, 4, 2, b'-', 0, "héllo--wörld--x\nab-----c------d\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 0, 4, 0, b'\t', 0, "héllo\twörld\tx\nab\t\tc\t\td\n"),
    ("héllo\twörld\tx\nab\tc\td\n", 3, 1, 0, b' ', 12, "héllowörldx\n   ab    cd\n"),
    ("trailing\t\n", 10, 1, 3, b' ', 0, "trailing   \n"),
    ("trailing\t\n", 0, 8, 1, b'.', 0, "trailing.\n"),
    ("trailing\t\n", 0, 8, 1, b'\t', 0, "trailing\t\n"),
    ("trailing\t\n", 0, 1, 1, b' ', 4, " trailing\n"),
    ("trailing\t\n", 0, 1, 1, b' ', 8, "trailing \n"),
    ("trailing\t\n", 5, 4, 2, b'-', 0, "trailing--\n"),
    ("trailing\t\n", 0, 4, 0, b'\t', 0, "trailing\n"),
    ("trailing\t\n", 3, 1, 0, b' ', 12, "trailing\n"),
    ("\tleading\n\tx\n", 10, 1, 3, b' ', 0, "          leading\n          x\n"),
    ("\tleading\n\tx\n", 0, 8, 1, b'.', 0, ".leading\n.x\n"),
    ("\tleading\n\tx\n", 0, 8, 1, b'\t', 0, "\tleading\n\tx\n"),
    ("\tleading\n\tx\n", 0, 1, 1, b' ', 4, " leading\n x\n"),
    ("\tleading\n\tx\n", 0, 1, 1, b' ', 8, " leading\n x\n"),
    ("\tleading\n\tx\n", 5, 4, 2, b'-', 0, "-----leading\n-----x\n"),
    ("\tleading\n\tx\n", 0, 4, 0, b'\t', 0, "leading\nx\n"),
    ("\tleading\n\tx\n", 3, 1, 0, b' ', 12, "   leading\n   x\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 10, 1, 3, b' ', 0, "NAME      VALUE\na         1\nbb        22\nccc       333\ndddd      4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 0, 8, 1, b'.', 0, "NAME.VALUE\na....1\nbb...22\nccc..333\ndddd.4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 0, 8, 1, b'\t', 0, "NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 0, 1, 1, b' ', 4, " NAMEVALUE\n    a1\n   bb22\n  ccc333\n dddd4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 0, 1, 1, b' ', 8, "NAME VALUE\na    1\nbb   22\nccc  333\ndddd 4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 5, 4, 2, b'-', 0, "NAME--VALUE\na-----1\nbb----22\nccc---333\ndddd--4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 0, 4, 0, b'\t', 0, "NAMEVALUE\na\t1\nbb\t22\nccc\t333\ndddd4444\n"),
    ("NAME\tVALUE\na\t1\nbb\t22\nccc\t333\ndddd\t4444\n", 3, 1, 0, b' ', 12, "NAMEVALUE\n   a1\n  bb22\n ccc333\ndddd4444\n"),
    ("a\tb\n\nc\td\n", 10, 1, 3, b' ', 0, "a         b\n\nc         d\n"),
    ("a\tb\n\nc\td\n", 0, 8, 1, b'.', 0, "a.b\n\nc.d\n"),
    ("a\tb\n\nc\td\n", 0, 8, 1, b'\t', 0, "a\tb\n\nc\td\n"),
    ("a\tb\n\nc\td\n", 0, 1, 1, b' ', 4, " ab\n\n cd\n"),
    ("a\tb\n\nc\td\n", 0, 1, 1, b' ', 8, "a b\n\nc d\n"),
    ("a\tb\n\nc\td\n", 5, 4, 2, b'-', 0, "a----b\n\nc----d\n"),
    ("a\tb\n\nc\td\n", 0, 4, 0, b'\t', 0, "a\tb\n\nc\td\n"),
    ("a\tb\n\nc\td\n", 3, 1, 0, b' ', 12, "  ab\n\n  cd\n"),
    ("  spaced  \t  cells \n", 10, 1, 3, b' ', 0, "  spaced       cells \n"),
    ("  spaced  \t  cells \n", 0, 8, 1, b'.', 0, "  spaced  .  cells \n"),
    ("  spaced  \t  cells \n", 0, 8, 1, b'\t', 0, "  spaced  \t  cells \n"),
    ("  spaced  \t  cells \n", 0, 1, 1, b' ', 4, "   spaced    cells \n"),
    ("  spaced  \t  cells \n", 0, 1, 1, b' ', 8, "  spaced     cells \n"),
    ("  spaced  \t  cells \n", 5, 4, 2, b'-', 0, "  spaced  --  cells \n"),
    ("  spaced  \t  cells \n", 0, 4, 0, b'\t', 0, "  spaced  \t  cells \n"),
    ("  spaced  \t  cells \n", 3, 1, 0, b' ', 12, "  spaced    cells \n"),
];

#[test]
fn matches_go_text_tabwriter() {
    let mut failures = Vec::new();
    for &(text, min_width, tab_width, padding, pad_char, flags, want) in GO_CASES {
        let cfg = TabConfig {
            min_width,
            tab_width,
            padding,
            pad_char,
            align_right: flags & 4 != 0,
            discard_empty_columns: flags & 8 != 0,
        };
        let got = align(text, cfg);
        if got != want {
            failures.push(format!(
                "{text:?} {cfg:?}\n   got: {got:?}\n  want: {want:?}"
            ));
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
