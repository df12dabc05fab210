//! Pickle opcodes by name (CPython's `pickletools` names), and the groups
//! the VM dispatches them in.

/// End of the pickle: the top of the stack is the result.
pub const STOP: u8 = b'.';
/// Protocol 2+: the protocol version follows.
pub const PROTO: u8 = 0x80;
/// Protocol 4+: a frame length (a hint for buffered readers).
pub const FRAME: u8 = 0x95;
/// Pushes a mark on the metastack.
pub const MARK: u8 = b'(';
/// Discards the top of the stack.
pub const POP: u8 = b'0';
/// Discards everything down to the topmost mark.
pub const POP_MARK: u8 = b'1';
/// Duplicates the top of the stack.
pub const DUP: u8 = b'2';
/// Pushes `None`.
pub const NONE: u8 = b'N';
/// Pushes `True`.
pub const NEWTRUE: u8 = 0x88;
/// Pushes `False`.
pub const NEWFALSE: u8 = 0x89;
/// A decimal integer on a line.
pub const INT: u8 = b'I';
/// A signed 4-byte integer.
pub const BININT: u8 = b'J';
/// An unsigned 1-byte integer.
pub const BININT1: u8 = b'K';
/// An unsigned 2-byte integer.
pub const BININT2: u8 = b'M';
/// A decimal long on a line.
pub const LONG: u8 = b'L';
/// A little-endian two's-complement long with a 1-byte length.
pub const LONG1: u8 = 0x8a;
/// The same with a 4-byte length.
pub const LONG4: u8 = 0x8b;
/// A float written as text.
pub const FLOAT: u8 = b'F';
/// A big-endian 8-byte float.
pub const BINFLOAT: u8 = b'G';
/// A quoted Python 2 string on a line.
pub const STRING: u8 = b'S';
/// A Python 2 string with a 4-byte length.
pub const BINSTRING: u8 = b'T';
/// A Python 2 string with a 1-byte length.
pub const SHORT_BINSTRING: u8 = b'U';
/// A raw-unicode-escaped string on a line.
pub const UNICODE: u8 = b'V';
/// UTF-8 with a 4-byte length.
pub const BINUNICODE: u8 = b'X';
/// UTF-8 with a 1-byte length.
pub const SHORT_BINUNICODE: u8 = 0x8c;
/// UTF-8 with an 8-byte length.
pub const BINUNICODE8: u8 = 0x8d;
/// Bytes with a 4-byte length.
pub const BINBYTES: u8 = b'B';
/// Bytes with a 1-byte length.
pub const SHORT_BINBYTES: u8 = b'C';
/// Bytes with an 8-byte length.
pub const BINBYTES8: u8 = 0x8e;
/// A bytearray with an 8-byte length.
pub const BYTEARRAY8: u8 = 0x96;
/// Pushes `[]`.
pub const EMPTY_LIST: u8 = b']';
/// Pushes `()`.
pub const EMPTY_TUPLE: u8 = b')';
/// Pushes `{}`.
pub const EMPTY_DICT: u8 = b'}';
/// Pushes `set()`.
pub const EMPTY_SET: u8 = 0x8f;
/// A list of the items above the mark.
pub const LIST: u8 = b'l';
/// A tuple of the items above the mark.
pub const TUPLE: u8 = b't';
/// A tuple of the top item.
pub const TUPLE1: u8 = 0x85;
/// A tuple of the top two items.
pub const TUPLE2: u8 = 0x86;
/// A tuple of the top three items.
pub const TUPLE3: u8 = 0x87;
/// A dict of the key/value pairs above the mark.
pub const DICT: u8 = b'd';
/// A frozenset of the items above the mark.
pub const FROZENSET: u8 = 0x91;
/// Appends the top item to the list below it.
pub const APPEND: u8 = b'a';
/// Appends the items above the mark to the list below it.
pub const APPENDS: u8 = b'e';
/// Sets one key/value pair in the dict below.
pub const SETITEM: u8 = b's';
/// Sets the pairs above the mark in the dict below.
pub const SETITEMS: u8 = b'u';
/// Adds the items above the mark to the set below.
pub const ADDITEMS: u8 = 0x90;
/// A global by module and name, each on a line.
pub const GLOBAL: u8 = b'c';
/// A global by module and name, both strings on the stack.
pub const STACK_GLOBAL: u8 = 0x93;
/// Instantiates a class named on two lines with the args above the mark.
pub const INST: u8 = b'i';
/// Instantiates the class above the mark with the args after it.
pub const OBJ: u8 = b'o';
/// Calls a callable with an args tuple.
pub const REDUCE: u8 = b'R';
/// `cls.__new__(cls, *args)`.
pub const NEWOBJ: u8 = 0x81;
/// `cls.__new__(cls, *args, **kwargs)`.
pub const NEWOBJ_EX: u8 = 0x92;
/// Sets an object's state.
pub const BUILD: u8 = b'b';
/// A persistent id on a line.
pub const PERSID: u8 = b'P';
/// A persistent id from the stack.
pub const BINPERSID: u8 = b'Q';
/// Memo lookup by a decimal index on a line.
pub const GET: u8 = b'g';
/// Memo lookup by a 1-byte index.
pub const BINGET: u8 = b'h';
/// Memo lookup by a 4-byte index.
pub const LONG_BINGET: u8 = b'j';
/// Memo store at a decimal index on a line.
pub const PUT: u8 = b'p';
/// Memo store at a 1-byte index.
pub const BINPUT: u8 = b'q';
/// Memo store at a 4-byte index.
pub const LONG_BINPUT: u8 = b'r';
/// Memo store at the memo's current length.
pub const MEMOIZE: u8 = 0x94;
/// Extension registry code, 1 byte.
pub const EXT1: u8 = 0x82;
/// Extension registry code, 2 bytes.
pub const EXT2: u8 = 0x83;
/// Extension registry code, 4 bytes.
pub const EXT4: u8 = 0x84;
/// Protocol 5: an out-of-band buffer.
pub const NEXT_BUFFER: u8 = 0x97;
/// Protocol 5: makes the top buffer read-only.
pub const READONLY_BUFFER: u8 = 0x98;

/// Which handler of the VM runs an opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Protocol, framing, marks and stack bookkeeping.
    Control,
    /// `None`, booleans, integers, floats.
    Number,
    /// Strings and bytes.
    Text,
    /// Building and filling containers.
    Container,
    /// Globals, calls, object state, persistent ids.
    Object,
    /// Memo gets and puts.
    Memo,
}

impl Group {
    /// The group of `op`; `None` for STOP and for opcodes a file may not use.
    pub fn of(op: u8) -> Option<Group> {
        Some(match op {
            PROTO | FRAME | MARK | POP | POP_MARK | DUP => Group::Control,
            NONE | NEWTRUE | NEWFALSE | INT | BININT | BININT1 | BININT2 | LONG | LONG1 | LONG4 | FLOAT
            | BINFLOAT => Group::Number,
            STRING | BINSTRING | SHORT_BINSTRING | UNICODE | BINUNICODE | SHORT_BINUNICODE | BINUNICODE8
            | BINBYTES | SHORT_BINBYTES | BINBYTES8 | BYTEARRAY8 => Group::Text,
            EMPTY_LIST | EMPTY_TUPLE | EMPTY_DICT | EMPTY_SET | LIST | TUPLE | TUPLE1 | TUPLE2 | TUPLE3
            | DICT | FROZENSET | APPEND | APPENDS | SETITEM | SETITEMS | ADDITEMS => Group::Container,
            GLOBAL | STACK_GLOBAL | INST | OBJ | REDUCE | NEWOBJ | NEWOBJ_EX | BUILD | PERSID | BINPERSID => {
                Group::Object
            }
            GET | BINGET | LONG_BINGET | PUT | BINPUT | LONG_BINPUT | MEMOIZE => Group::Memo,
            _ => return None,
        })
    }
}
