//! The words a search index holds and a query asks for, the same on both state backends: the
//! application splits text, not the database, because neither SQLite's FTS5 nor PostgreSQL's
//! text search splits Chinese or Japanese into words, and FTS5's trigram tokenizer cannot match
//! a two-character word. Letters and digits make lowercased words; a run of CJK characters
//! (Han, kana, Hangul) gives each character and each pair of neighbours, so that a word of any
//! length is found as the pairs it is made of.

/// Whether `c` is written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}'     // hiragana, katakana
        | '\u{3400}'..='\u{4dbf}'   // CJK extension A
        | '\u{4e00}'..='\u{9fff}'   // CJK unified ideographs
        | '\u{f900}'..='\u{faff}'   // compatibility ideographs
        | '\u{ac00}'..='\u{d7af}'   // Hangul syllables
        | '\u{20000}'..='\u{2fa1f}' // extensions B to F, compatibility supplement
    )
}

/// A piece of text: a word of letters and digits (lowercased), or a run of CJK characters.
enum Piece {
    Word(String),
    Cjk(Vec<char>),
}

fn split(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                pieces.push(Piece::Word(std::mem::take(&mut word)));
            }
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            pieces.push(Piece::Cjk(std::mem::take(&mut run)));
        }
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            pieces.push(Piece::Word(std::mem::take(&mut word)));
        }
    }
    if !word.is_empty() {
        pieces.push(Piece::Word(word));
    }
    if !run.is_empty() {
        pieces.push(Piece::Cjk(run));
    }
    pieces
}

/// Each ASCII byte as a word holds it (letters lowercased), or 0 where it separates words.
static ASCII_WORD: [u8; 128] = {
    let mut table = [0; 128];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() {
            table[b] = byte.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// What the index holds of `text`: its words, and of CJK runs every character and every pair,
/// separated by spaces. One pass straight into one buffer, ASCII looked up byte by byte: it
/// runs over every article's text, and a word per allocation cost a cold run a tenth of its
/// time.
pub fn index_tokens(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len() + text.len() / 4);
    let mut in_word = false;
    let mut previous_cjk: Option<char> = None;
    let separate = |out: &mut Vec<u8>| {
        if !out.is_empty() {
            out.push(b' ');
        }
    };
    let push_char = |out: &mut Vec<u8>, c: char| {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    };
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        if b.is_ascii() {
            previous_cjk = None;
            let lower = ASCII_WORD[usize::from(b)];
            if lower == 0 {
                in_word = false;
            } else {
                if !in_word {
                    separate(&mut out);
                    in_word = true;
                }
                out.push(lower);
            }
            at += 1;
            continue;
        }
        let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        at += c.len_utf8();
        if is_cjk(c) {
            in_word = false;
            separate(&mut out);
            push_char(&mut out, c);
            if let Some(before) = previous_cjk {
                out.push(b' ');
                push_char(&mut out, before);
                push_char(&mut out, c);
            }
            previous_cjk = Some(c);
        } else {
            previous_cjk = None;
            if c.is_alphanumeric() {
                if !in_word {
                    separate(&mut out);
                    in_word = true;
                }
                for lower in c.to_lowercase() {
                    push_char(&mut out, lower);
                }
            } else {
                in_word = false;
            }
        }
    }
    // Only whole characters were written.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// What a query asks for: its words, and of CJK runs the pairs (a lone character by itself),
/// every one of which a matching article holds. Empty when the query has no word.
pub fn query_tokens(query: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for piece in split(query) {
        match piece {
            Piece::Word(word) => tokens.push(word),
            Piece::Cjk(run) if run.len() == 1 => tokens.push(run.iter().collect()),
            Piece::Cjk(run) => tokens.extend(run.windows(2).map(|pair| pair.iter().collect())),
        }
    }
    let mut seen = std::collections::HashSet::new();
    tokens.retain(|t| seen.insert(t.clone()));
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_cjk_pairs() {
        assert_eq!(
            index_tokens("Metro Line 3 opens: 地铁三号线, café!"),
            "metro line 3 opens 地 铁 地铁 三 铁三 号 三号 线 号线 café"
        );
        assert_eq!(query_tokens("地铁"), ["地铁"]);
        assert_eq!(query_tokens("三号线 Opens"), ["三号", "号线", "opens"]);
        assert_eq!(query_tokens("铁"), ["铁"]);
        assert_eq!(query_tokens("  ...  "), Vec::<String>::new());
        // Every pair of a query's word is among the pairs of a text that holds it.
        let held = index_tokens("市民乘坐地铁三号线出行");
        for token in query_tokens("地铁三号") {
            assert!(held.split(' ').any(|t| t == token), "{token}");
        }
    }

    /// The words of `text` as [`split`] finds them (the pieces a query is made of), written
    /// the way the index writes them: the reference the fast path must agree with.
    fn reference_tokens(text: &str) -> String {
        let mut words: Vec<String> = Vec::new();
        for piece in split(text) {
            match piece {
                Piece::Word(word) => words.push(word),
                Piece::Cjk(run) => {
                    for (i, c) in run.iter().enumerate() {
                        words.push(c.to_string());
                        if i > 0 {
                            words.push([run[i - 1], *c].iter().collect());
                        }
                    }
                }
            }
        }
        words.join(" ")
    }

    proptest::proptest! {
        #[test]
        fn index_tokens_agree_with_the_pieces_of_a_query(
            text in "[a-zA-Z0-9 .,'\\-]{0,12}([ÀÉéßİ地铁三号のカ한、— ]{0,6}[a-zA-Z0-9 ]{0,8}){0,6}"
        ) {
            proptest::prop_assert_eq!(index_tokens(&text), reference_tokens(&text));
        }
    }
}
