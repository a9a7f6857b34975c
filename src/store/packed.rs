//! Text that SQLite keeps compressed: a record's largest columns. The fetched entry, kept for
//! rendering it again, is as large as the feed's own HTML; the sections (and the entry's own
//! text beside LLM sections) are the whole article in Markdown. Stored as LZ4 they take a
//! quarter to a half of the pages, which the one writer's transactions, the WAL, its
//! checkpoints and the flush to disk no longer copy. PostgreSQL compresses large values itself
//! (TOAST) and keeps plain text. SQL never looks inside them: what a query needs of the
//! sections (how many there are) is a column of its own.
//!
//! A packed value is a BLOB: a format byte, the text's length (4 bytes, little-endian), then
//! the LZ4 block. Values written as TEXT, before packing or by hand, read as they are.

use std::cell::RefCell;

use lz4_flex::block::{CompressTable, compress_into_with_table};
use sqlx::any::{Any, AnyArguments, AnyTypeInfo, AnyTypeInfoKind};
use sqlx::database::Database;
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::query::Query;

use super::Backend;

/// The one format so far: an LZ4 block.
const LZ4_BLOCK: u8 = 1;

/// The format byte and the text's length.
const HEADER: usize = 5;

/// Longest text a packed value may claim: a damaged value must not make a reader allocate
/// gigabytes. Far above any fetched entry (the feed body itself is capped well below).
const MAX_UNPACKED: usize = 256 * 1024 * 1024;

/// `text` packed for SQLite.
pub(super) fn pack(text: &str) -> Vec<u8> {
    thread_local! {
        /// LZ4's hash table and a block's room, kept between values: made afresh for each, the
        /// two were zeroed allocations of several kilobytes per column of every record.
        static SCRATCH: RefCell<(CompressTable, Vec<u8>)> =
            RefCell::new((CompressTable::default(), Vec::new()));
    }
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    SCRATCH.with_borrow_mut(|(table, room)| {
        let most = lz4_flex::block::get_maximum_output_size(text.len());
        if room.len() < most {
            room.resize(most, 0);
        }
        // The room has the block's largest size, so this cannot fail.
        let block = compress_into_with_table(text.as_bytes(), room, table).unwrap_or(0);
        let mut packed = Vec::with_capacity(HEADER + block);
        packed.push(LZ4_BLOCK);
        packed.extend_from_slice(&len.to_le_bytes());
        packed.extend_from_slice(&room[..block]);
        // A rare very large value keeps neither its room nor the larger table it took.
        if room.len() > KEPT_ROOM {
            *room = Vec::new();
        }
        if matches!(table, CompressTable::Large(_)) {
            *table = CompressTable::default();
        }
        packed
    })
}

/// The largest block room [`pack`] keeps between values.
const KEPT_ROOM: usize = 256 * 1024;

/// A large text column's value as a backend stores it: packed in SQLite, as it is in
/// PostgreSQL.
#[derive(Debug, Clone)]
pub(super) enum Large {
    Text(String),
    Packed(Vec<u8>),
}

impl Large {
    pub(super) fn of(backend: Backend, text: String) -> Self {
        match backend {
            Backend::Sqlite => Self::Packed(pack(&text)),
            Backend::Postgres => Self::Text(text),
        }
    }
}

/// Binds `value` (NULL when `None`) to the next parameter of `query`, for `backend`'s column.
pub(super) fn bind_large<'q>(
    query: Query<'q, Any, AnyArguments>,
    value: Option<&'q Large>,
    backend: Backend,
) -> Query<'q, Any, AnyArguments> {
    match value {
        Some(Large::Packed(bytes)) => query.bind(Some(bytes.as_slice())),
        Some(Large::Text(text)) => query.bind(Some(text.as_str())),
        // Either type binds a NULL; the column's own is the one each backend expects.
        None if backend == Backend::Sqlite => query.bind(None::<Vec<u8>>),
        None => query.bind(None::<String>),
    }
}

/// The text of a packed value.
fn unpack(packed: &[u8]) -> Result<String, String> {
    let (&format, rest) = packed.split_first().ok_or("an empty packed value")?;
    if format != LZ4_BLOCK {
        return Err(format!("unknown packed format {format}"));
    }
    let (len, block) = rest
        .split_first_chunk::<4>()
        .ok_or("a packed value cut short")?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|e| e.to_string())?;
    if len > MAX_UNPACKED {
        return Err(format!("a packed value claims {len} bytes"));
    }
    let bytes = lz4_flex::block::decompress(block, len).map_err(|e| e.to_string())?;
    if bytes.len() != len {
        return Err(format!(
            "a packed value claims {len} bytes and holds {}",
            bytes.len()
        ));
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// A text column that may hold packed values: decodes TEXT as it is and a BLOB by unpacking it.
#[derive(Debug)]
pub(super) struct MaybePacked(pub String);

impl sqlx::Type<Any> for MaybePacked {
    fn type_info() -> AnyTypeInfo {
        <String as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        matches!(ty.kind(), AnyTypeInfoKind::Text | AnyTypeInfoKind::Blob)
    }
}

impl<'r> Decode<'r, Any> for MaybePacked {
    fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        if let Ok(text) = <String as Decode<Any>>::decode(value.clone()) {
            return Ok(Self(text));
        }
        let packed = <Vec<u8> as Decode<Any>>::decode(value)?;
        Ok(Self(unpack(&packed)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_any_text() {
        for text in [
            "",
            "{}",
            "é ü 文字 🙂",
            &"<p>repeated words</p>".repeat(500),
        ] {
            let packed = pack(text);
            assert_eq!(unpack(&packed).as_deref(), Ok(text));
        }
        let long = "<p>repeated words</p>".repeat(500);
        assert!(
            pack(&long).len() < long.len() / 10,
            "repetitive text shrinks"
        );
    }

    /// The thread's kept table and room leave nothing of one value in the next: small after
    /// large (over 64 KiB, which takes LZ4's larger table, and over the kept room) and after
    /// small, each value packs as it does alone on a fresh thread.
    #[test]
    fn values_packed_one_after_another_are_each_whole() {
        let large: String = (0..60_000).map(|i| format!("{i} ")).collect();
        assert!(large.len() > usize::from(u16::MAX) && large.len() > KEPT_ROOM);
        let small = "<p>a short entry, packed after a large one</p>";
        let alone = |text: &'static str| {
            std::thread::spawn(move || pack(text))
                .join()
                .expect("packing thread")
        };
        let (small_alone, other_alone) = (alone(small), alone("other words"));
        for text in [small, &large, small, "other words", &large, "", small] {
            let packed = pack(text);
            assert_eq!(unpack(&packed).as_deref(), Ok(text));
            if text == small {
                assert_eq!(packed, small_alone);
            } else if text == "other words" {
                assert_eq!(packed, other_alone);
            }
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let good = pack(&"a fetched entry ".repeat(40));
        assert!(unpack(&[]).is_err());
        assert!(unpack(&[9, 0, 0, 0, 0]).unwrap_err().contains("format 9"));
        assert!(unpack(&good[..3]).is_err(), "cut inside the length");
        assert!(
            unpack(&good[..good.len() - 4]).is_err(),
            "cut inside the block"
        );
        let mut huge = good.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(&huge).unwrap_err().contains("claims"));
        let mut longer = good;
        longer[1..5].copy_from_slice(&10_000u32.to_le_bytes());
        assert!(unpack(&longer).is_err(), "a length the block does not fill");
    }
}
