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

/// The index's words of several pieces of text, written into one buffer as they are found:
/// what separates two pieces separates words. [`IndexTokens::distinct`] keeps each word once,
/// as an index that keeps no counts takes them: a repeat is taken back as soon as it ends, so
/// the words are not split out of the whole text again and looked up a second time.
///
/// One pass, ASCII looked up byte by byte: it runs over every article's text, and a word per
/// allocation cost a cold run a tenth of its time.
pub struct IndexTokens {
    out: Vec<u8>,
    /// Where the token being written starts, and where its separator does: a repeat goes back
    /// there.
    start: usize,
    separator: usize,
    /// The tokens written so far; `None` when repeats stay.
    seen: Option<hashbrown::HashTable<Seen>>,
    hasher: foldhash::fast::FixedState,
}

/// A token [`IndexTokens::distinct`] wrote: where it is in the buffer, and its first eight
/// bytes as one number. No token holds a zero byte (letters, digits, whole UTF-8 characters),
/// so a token of eight bytes or fewer is that number: most words are hashed and told apart by
/// it alone, without reading the buffer. Most words of an article are repeats, and looking
/// them up was most of the time its words took.
#[derive(Clone, Copy)]
struct Seen {
    head: u64,
    at: usize,
    len: usize,
}

/// Bytes a token's [`Seen::head`] holds.
const HEAD: usize = 8;

/// Most distinct words a text's table is sized ahead for (a table of about 200 KiB).
const RESERVED_WORDS: usize = 4096;

/// A token's first [`HEAD`] bytes as one number, the first byte lowest (zeros past a short
/// token's end), read in at most three loads. A copy of a length known only at run time is a
/// call to `memcpy`, and taken of every word of every article that call was a third of the
/// time the words took.
fn head(token: &[u8]) -> u64 {
    let load4 = |at: usize| {
        token
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b: [u8; 4]| u64::from(u32::from_le_bytes(b)))
    };
    match token.len() {
        0 => 0,
        len @ 1..=3 => {
            let byte = |at: usize| u64::from(token[at]) << (8 * at);
            byte(0) | byte(len / 2) | byte(len - 1)
        }
        // Two loads that overlap: the bytes both hold are the same.
        len @ 4..=7 => load4(0) | (load4(len - 4) << (8 * (len - 4))),
        _ => token
            .first_chunk::<HEAD>()
            .map_or(0, |b| u64::from_le_bytes(*b)),
    }
}

impl Seen {
    /// The token's hash. A short token's is its head, mixed so that both ends of the result
    /// vary (the table takes its slot from the low bits and a tag from the high ones).
    fn hash(&self, out: &[u8], hasher: &foldhash::fast::FixedState) -> u64 {
        use std::hash::BuildHasher as _;
        if self.len <= HEAD {
            let product = u128::from(self.head) * 0x9e37_79b9_7f4a_7c15_u128;
            // Both halves folded: the truncations are the point.
            (product as u64) ^ ((product >> 64) as u64)
        } else {
            hasher.hash_one(&out[self.at..self.at + self.len])
        }
    }
}

impl IndexTokens {
    /// Every word as often as it comes (an index that ranks by counts).
    pub fn all() -> Self {
        Self::new(None)
    }

    /// Each word once, in the order first met.
    pub fn distinct() -> Self {
        Self::new(Some(hashbrown::HashTable::new()))
    }

    fn new(seen: Option<hashbrown::HashTable<Seen>>) -> Self {
        Self {
            out: Vec::new(),
            start: 0,
            separator: 0,
            seen,
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    /// The tokens, separated by spaces.
    pub fn finish(self) -> String {
        // Only whole characters were written.
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Begins a token.
    fn begin(&mut self) {
        self.separator = self.out.len();
        if !self.out.is_empty() {
            self.out.push(b' ');
        }
        self.start = self.out.len();
    }

    /// Ends the token begun last: taken back when it was written before.
    fn end(&mut self) {
        let Some(seen) = &mut self.seen else {
            return;
        };
        let (out, hasher) = (&self.out, &self.hasher);
        let token = &out[self.start..];
        let this = Seen {
            head: head(token),
            at: self.start,
            len: token.len(),
        };
        let same = |other: &Seen| {
            other.head == this.head
                && other.len == this.len
                && (this.len <= HEAD || out[other.at..other.at + other.len] == *token)
        };
        let hash = this.hash(out, hasher);
        if seen.find(hash, same).is_some() {
            self.out.truncate(self.separator);
        } else {
            seen.insert_unique(hash, this, |s| s.hash(out, hasher));
        }
    }

    fn push_char(&mut self, c: char) {
        self.out
            .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }

    /// Adds the tokens of `text`.
    pub fn push(&mut self, text: &str) {
        self.out.reserve(text.len() + text.len() / 4);
        if let Some(seen) = &mut self.seen {
            // Room for a distinct word in every 16 bytes, so that the table seldom grows while
            // it fills (growing moved every entry each time); a very long text's table grows
            // as it needs, past the first few thousand words.
            let (out, hasher) = (&self.out, &self.hasher);
            seen.reserve((text.len() / 16).min(RESERVED_WORDS), |s| {
                s.hash(out, hasher)
            });
        }
        let bytes = text.as_bytes();
        let mut in_word = false;
        let mut previous_cjk: Option<char> = None;
        let mut at = 0;
        while let Some(&b) = bytes.get(at) {
            if b.is_ascii() {
                previous_cjk = None;
                if ASCII_WORD[usize::from(b)] == 0 {
                    if in_word {
                        self.end();
                        in_word = false;
                    }
                    at += 1;
                    continue;
                }
                if !in_word {
                    self.begin();
                    in_word = true;
                }
                // The whole run of ASCII letters and digits at once: most of any text.
                while let Some(&lower) = bytes
                    .get(at)
                    .and_then(|&b| ASCII_WORD.get(usize::from(b)))
                    .filter(|&&lower| lower != 0)
                {
                    self.out.push(lower);
                    at += 1;
                }
                continue;
            }
            let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            at += c.len_utf8();
            if is_cjk(c) {
                if in_word {
                    self.end();
                    in_word = false;
                }
                self.begin();
                self.push_char(c);
                self.end();
                if let Some(before) = previous_cjk {
                    self.begin();
                    self.push_char(before);
                    self.push_char(c);
                    self.end();
                }
                previous_cjk = Some(c);
            } else {
                previous_cjk = None;
                if c.is_alphanumeric() {
                    if !in_word {
                        self.begin();
                        in_word = true;
                    }
                    for lower in c.to_lowercase() {
                        self.push_char(lower);
                    }
                } else if in_word {
                    self.end();
                    in_word = false;
                }
            }
        }
        if in_word {
            self.end();
        }
    }
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

    /// What the index holds of `text`: its words, and of CJK runs every character and every
    /// pair, separated by spaces.
    fn index_tokens(text: &str) -> String {
        let mut tokens = IndexTokens::all();
        tokens.push(text);
        tokens.finish()
    }

    #[test]
    fn words_and_cjk_pairs() {
        assert_eq!(
            index_tokens("Metro Line 3 opens: 地铁三号线, café!"),
            "metro line 3 opens 地 铁 地铁 三 铁三 号 三号 线 号线 café"
        );
        let mut distinct = IndexTokens::distinct();
        distinct.push("Line 3, line 3: 地铁 and 地铁");
        distinct.push("LINE");
        assert_eq!(distinct.finish(), "line 3 地 铁 地铁 and");
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

    #[test]
    fn a_head_is_the_first_eight_bytes_zero_padded() {
        let bytes: Vec<u8> = (1..=12).collect();
        for len in 0..=bytes.len() {
            let token = &bytes[..len];
            let mut padded = [0; HEAD];
            let short = len.min(HEAD);
            padded[..short].copy_from_slice(&token[..short]);
            assert_eq!(head(token), u64::from_le_bytes(padded), "{len} bytes");
        }
    }

    #[test]
    fn words_that_begin_alike_are_told_apart() {
        let mut distinct = IndexTokens::distinct();
        distinct.push("Internationalization internationalisation internat internation");
        distinct.push("internationalisation, INTERNAT; internationalization 地铁地铁线 地铁线");
        assert_eq!(
            distinct.finish(),
            "internationalization internationalisation internat internation 地 铁 地铁 铁地 线 铁线"
        );
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

        /// Pieces given one by one hold the words of the pieces joined by a separator; the
        /// distinct form holds each of them once, in the order first met.
        #[test]
        fn distinct_tokens_are_the_first_of_each_word(
            pieces in proptest::collection::vec("[a-zA-Z0-9 .,]{0,10}([地铁三号地铁のカ한 ]{0,4}[aAbB0 ]{0,4}){0,4}", 0..5)
        ) {
            let joined = index_tokens(&pieces.join("\n"));
            let mut all = IndexTokens::all();
            let mut distinct = IndexTokens::distinct();
            for piece in &pieces {
                all.push(piece);
                distinct.push(piece);
            }
            proptest::prop_assert_eq!(&all.finish(), &joined);
            let mut seen = std::collections::HashSet::new();
            let expected: Vec<&str> = joined
                .split(' ')
                .filter(|w| !w.is_empty() && seen.insert(*w))
                .collect();
            proptest::prop_assert_eq!(distinct.finish(), expected.join(" "));
        }
    }
}
