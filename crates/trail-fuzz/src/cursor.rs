//! Cursors (V5): whatever a client passes back, decoding refuses it or gives a cursor that
//! encodes to a text decoding to the same cursor, within the documented bounds.

use trail_core::EventId;
use trail_core::query::Cursor;

pub fn run(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let Ok(cursor) = Cursor::decode(text) else { return };
    assert!(cursor.snapshot >= EventId::ZERO, "{text:?}: a negative snapshot");
    assert!(cursor.before >= EventId::new(1), "{text:?}: a page before id 1");
    assert!(
        i128::from(cursor.before.get()) <= i128::from(cursor.snapshot.get()) + 1,
        "{text:?}: a page starting past its snapshot"
    );
    assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor), "{text:?} does not survive encoding");
}
