//! How a stored payload (an encoded protobuf message kept in a row) is written and read back.
//!
//! A win's payload carries its value model in words: the formula, each input with where it came
//! from, the credits and the headline, about 1.3 KB. PostgreSQL compresses a value only when its
//! row is over 2 KB, which a win's row is not, and SQLite compresses nothing, so the two copies of
//! every win (scoring's and spotlight's) were kept as written: half the bytes of every row a win
//! adds. [`pack`] compresses them with LZ4 against a dictionary ([`DICTIONARY_V1`]): a win's
//! payload comes out about a third of its size (1,286 bytes to 425 in the benchmark's wins; 915
//! with LZ4 alone). An announcement's card repeats the same words, and is packed the same way
//! where spotlight and notify keep it (the demo's: 766 bytes to 365; 638 with LZ4 alone). A kept
//! event is packed with LZ4 alone ([`pack_without_dictionary`]): the dictionary takes 46 bytes off
//! one (482 to 436 a row), not worth the 4 µs it adds to packing.
//!
//! The dictionary is what every win repeats and no single win can compress away: the formulas in
//! words, the inputs' names, units and where each came from, the credits' roles, the field tags.
//! It is one win of each kind and value label that `herald up --demo` produced (automation run,
//! page, request, failed change, change, problem, incident), encoded and laid end to end, with
//! the sample organisation's names (its services, teams, people, their aliases and the
//! organisation's own name) taken out, so it favours no organisation over another: with the
//! benchmark's names swapped for random letters its wins still pack to 432 bytes. A packed
//! payload names the dictionary it was packed with, and every dictionary Herald ever wrote with
//! stays in the binary unchanged (a test pins its bytes): a better one is a new marker, never an
//! edit of this one.
//!
//! A packed payload starts with a zero byte, which no encoded protobuf message does (field number
//! 0 does not exist), then a byte naming the compression and the length it unpacks to. Anything
//! else is a payload written before packing, or one that compression would not have made smaller,
//! and is read as it is: rows already stored need no rewrite.
//!
//! The same packing carries an event's raw delivery on the bus ([`pack_raw`], [`raw_body`]): the
//! delivery's JSON is most of an event's bytes, and every stream write, copy and read of it costs
//! in proportion. Raw bytes can start with anything, so there the event says how they are written
//! (`raw_payload_encoding`) instead of the first byte.

use std::borrow::Cow;

use herald_proto::v1::{ItsmEvent, RawEncoding};

/// The first byte of a packed payload: never the first byte of an encoded protobuf message.
const PACKED: u8 = 0x00;
/// The second: LZ4 block format, then the unpacked length (four bytes, little-endian), then the
/// block.
const LZ4: u8 = 0x01;
/// Or: the same, the block compressed against [`DICTIONARY_V1`].
const LZ4_DICTIONARY_V1: u8 = 0x02;
const HEADER: usize = 2 + 4;

/// The first dictionary [`pack`] compresses against (see the module's documentation). Never
/// changed: payloads already stored were packed against these very bytes.
pub const DICTIONARY_V1: &[u8] = include_bytes!("dictionary_v1.bin");

/// An LZ4 block never unpacks to more than 255 bytes a byte of input; a stored length beyond that
/// is damage, not a payload (and is not allocated).
const MAX_RATIO: usize = 255;

/// Why stored bytes cannot be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the payload is packed with an unknown compression ({0:#04x})")]
    UnknownCompression(u8),
    #[error("the packed payload is cut short")]
    Truncated,
    #[error("the packed payload claims {claimed} bytes, more than {stored} stored bytes can hold")]
    ImplausibleLength { claimed: usize, stored: usize },
    #[error("the packed payload is damaged: {0}")]
    Damaged(String),
    #[error("the raw payload is marked compressed but carries no packing header")]
    NotPacked,
    #[error("the raw payload's encoding ({0}) is not one this version of Herald knows")]
    UnknownEncoding(i32),
}

/// `encoded`, compressed against the dictionary when that makes it smaller (with the header),
/// else as it is.
pub fn pack(encoded: Vec<u8>) -> Vec<u8> {
    compress(&encoded, LZ4_DICTIONARY_V1).unwrap_or(encoded)
}

/// `encoded`, compressed with LZ4 alone when that makes it smaller, else as it is: for messages
/// that repeat little of what a win does, where the dictionary would cost more time to pack than
/// it saves in bytes.
pub fn pack_without_dictionary(encoded: Vec<u8>) -> Vec<u8> {
    compress(&encoded, LZ4).unwrap_or(encoded)
}

/// The dictionary a packing marker names, or `None` for a marker no version of Herald wrote.
fn dictionary(marker: u8) -> Option<&'static [u8]> {
    match marker {
        LZ4 => Some(&[]),
        LZ4_DICTIONARY_V1 => Some(DICTIONARY_V1),
        _ => None,
    }
}

/// `bytes` compressed behind the packing header with the compression `marker` names, or `None`
/// when that would not make them smaller.
fn compress(bytes: &[u8], marker: u8) -> Option<Vec<u8>> {
    let length = u32::try_from(bytes.len()).ok()?;
    let block = match dictionary(marker)? {
        [] => lz4_flex::block::compress(bytes),
        dictionary => lz4_flex::block::compress_with_dict(bytes, dictionary),
    };
    if block.len() + HEADER >= bytes.len() {
        return None;
    }
    let mut packed = Vec::with_capacity(HEADER + block.len());
    packed.extend_from_slice(&[PACKED, marker]);
    packed.extend_from_slice(&length.to_le_bytes());
    packed.extend_from_slice(&block);
    Some(packed)
}

/// Compresses the event's raw delivery when that makes it smaller, and says so on the event.
pub fn pack_raw(event: &mut ItsmEvent) {
    if event.raw_payload_encoding != RawEncoding::Identity as i32 {
        return;
    }
    // A raw delivery is JSON or a form, not a win: the dictionary would not help it.
    if let Some(packed) = compress(&event.raw_payload, LZ4) {
        event.raw_payload = packed;
        event.raw_payload_encoding = RawEncoding::Lz4 as i32;
    }
}

/// The event's raw delivery, byte for byte as ingest received it.
pub fn raw_body(event: &ItsmEvent) -> Result<Cow<'_, [u8]>, UnpackError> {
    match RawEncoding::try_from(event.raw_payload_encoding) {
        Ok(RawEncoding::Identity) => Ok(Cow::Borrowed(&event.raw_payload)),
        Ok(RawEncoding::Lz4) => match event.raw_payload.as_slice() {
            packed @ [PACKED, LZ4, ..] => unpack(packed),
            _ => Err(UnpackError::NotPacked),
        },
        Err(_) => Err(UnpackError::UnknownEncoding(event.raw_payload_encoding)),
    }
}

/// The encoded message inside `stored`: unpacked, or `stored` itself when it was not packed.
pub fn unpack(stored: &[u8]) -> Result<Cow<'_, [u8]>, UnpackError> {
    match stored {
        [PACKED, marker, rest @ ..] => {
            let dictionary = dictionary(*marker).ok_or(UnpackError::UnknownCompression(*marker))?;
            let (length, block) = rest
                .split_first_chunk::<4>()
                .ok_or(UnpackError::Truncated)?;
            let length = u32::from_le_bytes(*length) as usize;
            if length > block.len().saturating_mul(MAX_RATIO) {
                return Err(UnpackError::ImplausibleLength {
                    claimed: length,
                    stored: stored.len(),
                });
            }
            let mut out = vec![0; length];
            let written = lz4_flex::block::decompress_into_with_dict(block, &mut out, dictionary)
                .map_err(|e| UnpackError::Damaged(e.to_string()))?;
            if written != length {
                return Err(UnpackError::Damaged(format!(
                    "{written} bytes unpacked where {length} were stored"
                )));
            }
            Ok(Cow::Owned(out))
        }
        [PACKED] => Err(UnpackError::Truncated),
        _ => Ok(Cow::Borrowed(stored)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_proto::v1::{Value, Win};
    use prost::Message;
    use sha2::Digest;

    fn win() -> Win {
        Win {
            id: "w-75376a0f769a2d8b".into(),
            headline: "Users cannot reach Warehouse Management from the Tilburg office".into(),
            value: Some(Value {
                formula: "people affected × blocked share × working hours saved × loaded hourly \
                          rate; working hours saved = baseline restore time − actual restore time"
                    .into(),
                amount: 258.4,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_win_comes_back_as_it_was_and_smaller() {
        let encoded = win().encode_to_vec();
        let packed = pack(encoded.clone());
        assert!(
            packed.len() < encoded.len(),
            "{} ≥ {}",
            packed.len(),
            encoded.len()
        );
        assert_eq!(packed[0], PACKED);
        let unpacked = unpack(&packed).expect("unpacks");
        assert_eq!(unpacked.as_ref(), encoded.as_slice());
        assert_eq!(Win::decode(unpacked.as_ref()).expect("decodes"), win());
    }

    #[test]
    fn the_dictionary_packs_a_win_smaller_than_lz4_alone() {
        let encoded = win().encode_to_vec();
        let alone = compress(&encoded, LZ4).expect("LZ4 alone shrinks it");
        let packed = pack(encoded.clone());
        assert_eq!(packed[..2], [PACKED, LZ4_DICTIONARY_V1]);
        assert!(
            packed.len() < alone.len(),
            "{} ≥ {}",
            packed.len(),
            alone.len()
        );
        assert_eq!(
            unpack(&packed).expect("unpacks").as_ref(),
            encoded.as_slice()
        );
    }

    #[test]
    fn payloads_packed_before_the_dictionary_are_still_read() {
        let encoded = win().encode_to_vec();
        let old = compress(&encoded, LZ4).expect("packs");
        assert_eq!(old[..2], [PACKED, LZ4]);
        assert_eq!(unpack(&old).expect("unpacks").as_ref(), encoded.as_slice());
    }

    #[test]
    fn the_first_dictionary_is_never_changed() {
        // Rows packed against it are read with it: an edit would make them unreadable or wrong.
        let digest: String = sha2::Sha256::digest(DICTIONARY_V1)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            digest, "801b28cf67b1bcfa8636e899a53db1acdf7a313bf33ac2f1e98fc2b0ac37c3b9",
            "dictionary_v1.bin changed: add a new dictionary and marker instead"
        );
    }

    #[test]
    fn a_block_read_against_the_wrong_dictionary_is_not_taken_for_the_payload() {
        let encoded = win().encode_to_vec();
        let mut packed = pack(encoded.clone());
        packed[1] = LZ4;
        assert!(
            unpack(&packed).map_or(true, |bytes| bytes.as_ref() != encoded.as_slice()),
            "a dictionary block must not unpack to the payload without its dictionary"
        );
    }

    #[test]
    fn payloads_written_before_packing_are_read_as_they_are() {
        let encoded = win().encode_to_vec();
        assert_ne!(
            encoded[0], PACKED,
            "an encoded message never starts with a zero byte"
        );
        assert!(matches!(unpack(&encoded), Ok(Cow::Borrowed(b)) if b == encoded.as_slice()));
        assert!(matches!(unpack(&[]), Ok(Cow::Borrowed(b)) if b.is_empty()));
    }

    #[test]
    fn what_compression_would_not_shrink_is_kept_as_it_is() {
        let tiny = Win {
            id: "w-1".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(pack(tiny.clone()), tiny);
    }

    fn delivery() -> Vec<u8> {
        let line = br#"{"number": "INC0048213", "state": "6", "assignment_group": "Service Desk"}"#;
        line.repeat(40)
    }

    #[test]
    fn a_raw_delivery_travels_compressed_and_comes_back_byte_for_byte() {
        let body = delivery();
        let mut event = ItsmEvent {
            raw_payload: body.clone(),
            ..Default::default()
        };
        pack_raw(&mut event);
        assert_eq!(event.raw_payload_encoding, RawEncoding::Lz4 as i32);
        assert!(event.raw_payload.len() < body.len() / 2);
        assert_eq!(raw_body(&event).expect("unpacks").as_ref(), body.as_slice());
        let packed_once = event.raw_payload.clone();
        pack_raw(&mut event);
        assert_eq!(event.raw_payload, packed_once, "never packed twice");
    }

    #[test]
    fn a_raw_delivery_that_would_not_shrink_is_left_as_received() {
        // Raw bytes may start with the packing header's own bytes: only the event's encoding says
        // they are packed.
        let body = vec![PACKED, LZ4, 0xff, 0xff, 0xff, 0xff, 7];
        let mut event = ItsmEvent {
            raw_payload: body.clone(),
            ..Default::default()
        };
        pack_raw(&mut event);
        assert_eq!(event.raw_payload_encoding, RawEncoding::Identity as i32);
        assert_eq!(
            raw_body(&event).expect("as received").as_ref(),
            body.as_slice()
        );
        let empty = ItsmEvent::default();
        assert!(raw_body(&empty).expect("nothing").is_empty());
    }

    #[test]
    fn a_raw_delivery_marked_compressed_without_its_header_or_in_an_unknown_encoding_is_an_error() {
        let mut event = ItsmEvent {
            raw_payload: delivery(),
            raw_payload_encoding: RawEncoding::Lz4 as i32,
            ..Default::default()
        };
        assert!(matches!(raw_body(&event), Err(UnpackError::NotPacked)));
        event.raw_payload_encoding = 9;
        assert!(matches!(
            raw_body(&event),
            Err(UnpackError::UnknownEncoding(9))
        ));
    }

    #[test]
    fn damaged_packings_are_errors_not_panics_or_huge_allocations() {
        let packed = pack(win().encode_to_vec());
        assert!(matches!(unpack(&packed[..4]), Err(UnpackError::Truncated)));
        assert!(matches!(unpack(&[PACKED]), Err(UnpackError::Truncated)));
        assert!(matches!(
            unpack(&[PACKED, 0x7f, 1, 2]),
            Err(UnpackError::UnknownCompression(0x7f))
        ));
        let mut huge = packed.clone();
        huge[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            unpack(&huge),
            Err(UnpackError::ImplausibleLength { .. })
        ));
        let mut short = packed.clone();
        let cut = short.len() - 3;
        short.truncate(cut);
        assert!(unpack(&short).is_err(), "a cut block is an error");
        let mut longer = packed.clone();
        let claimed = u32::from_le_bytes([longer[2], longer[3], longer[4], longer[5]]) + 1;
        longer[2..6].copy_from_slice(&claimed.to_le_bytes());
        assert!(matches!(unpack(&longer), Err(UnpackError::Damaged(_))));
    }
}
