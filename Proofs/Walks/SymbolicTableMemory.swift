import HVCore
import SMT

/// The entries on one address's path as free variables, one per level: the
/// walk reads at most one entry per level, so any table memory gives the
/// walk some value at each level, and the theorems that use this memory
/// also prove that each read is at the address the architecture reads.
/// Together that is the statement over a Z3 array of table words (equal
/// addresses hold equal words), and stronger: it holds even for memories
/// that answer the same address differently at two levels. Queries over
/// the array itself took Z3 up to a minute; these take well under one.
struct PathTableMemory: TableMemory {
    let entries: [SymBV]
    let base: SymBV, size: SymBV
    struct Read {
        let table: SymBV, index: SymBV, level: Int, active: SymBool
        var address: SymBV { table &+ index.shiftedLeft(by: 3) }
    }

    private(set) var reads: [Read] = []

    init(_ c: SMTContext, levels: Int, base: SymBV, size: SymBV, prefix: String = "entry") {
        entries = (0..<levels).map { c.bitVector("\(prefix)_l\($0)") }
        self.base = base
        self.size = size
    }

    func table(at address: SymBV) -> (table: SymBV, inWindow: SymBool) {
        (address, (address &- base).unsignedLess(than: size))
    }

    mutating func load(_ table: SymBV, index: SymBV, level: Int, when active: SymBool) -> SymBV {
        reads.append(Read(table: table, index: index, level: level, active: active))
        return entries[level]
    }
}

/// A concrete table memory for replaying a counterexample: `word` answers
/// a read at an address and level (a path's words at their addresses, or
/// each level's word wherever it is read). Records every address read.
struct ConcreteTableMemory: TableMemory {
    let base: UInt64, size: UInt64
    let word: (_ address: UInt64, _ level: Int) -> UInt64
    private(set) var readAddresses: [UInt64] = []

    init(base: UInt64, size: UInt64, word: @escaping (_ address: UInt64, _ level: Int) -> UInt64) {
        self.base = base
        self.size = size
        self.word = word
    }

    func table(at address: UInt64) -> (table: UInt64, inWindow: Bool) { (address, address &- base < size) }

    mutating func load(_ table: UInt64, index: UInt64, level: Int, when active: Bool) -> UInt64 {
        readAddresses.append(table &+ index << 3)
        return word(table &+ index << 3, level)
    }
}

/// A walk's answer in a comparable concrete form.
struct ConcreteWalk: Equatable, CustomStringConvertible {
    let mapped: Bool, torn: Bool, host: UInt64, flags: UInt64, level: UInt64

    init(_ a: WalkAnswer<UInt64>) {
        mapped = a.mapped
        torn = a.torn
        host = a.mapped ? a.hostAddress : 0
        flags = a.mapped ? a.flags : 0
        level = a.mapped ? a.level : 0
    }

    var description: String {
        torn ? "torn" : mapped ? "mapped to \(hex(host)) flags \(hex(flags)) level \(level)" : "unmapped"
    }
}
