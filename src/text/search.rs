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

/// What the index holds of `text`: its words, and of CJK runs every character and every pair,
/// separated by spaces. One pass straight into one string, ASCII taken byte-wise: it runs over
/// every article's text, and a word per allocation cost a cold run a tenth of its time.
pub fn index_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut in_word = false;
    let mut previous_cjk: Option<char> = None;
    let separate = |out: &mut String| {
        if !out.is_empty() {
            out.push(' ');
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            previous_cjk = None;
            if c.is_ascii_alphanumeric() {
                if !in_word {
                    separate(&mut out);
                    in_word = true;
                }
                out.push(c.to_ascii_lowercase());
            } else {
                in_word = false;
            }
        } else if is_cjk(c) {
            in_word = false;
            separate(&mut out);
            out.push(c);
            if let Some(before) = previous_cjk {
                out.push(' ');
                out.push(before);
                out.push(c);
            }
            previous_cjk = Some(c);
        } else {
            previous_cjk = None;
            if c.is_alphanumeric() {
                if !in_word {
                    separate(&mut out);
                    in_word = true;
                }
                out.extend(c.to_lowercase());
            } else {
                in_word = false;
            }
        }
    }
    out
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
}
