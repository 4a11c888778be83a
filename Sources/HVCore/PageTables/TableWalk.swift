/// Where a walk reads table entries. The shipped conformance reads the
/// allocator's table window (`WindowTableMemory`); the proofs' one reads a
/// symbolic array of 64-bit words, so the walk a translate runs is the walk
/// the theorems are about.
public protocol TableMemory {
    associatedtype Word: BitVectorDomain
    /// A table the walk may read: a pointer, or a symbolic address.
    associatedtype Table

    /// The table at host-physical `address` (an entry's table address), and
    /// whether it lies inside the table window; the walk reads it only then.
    func table(at address: Word) -> (table: Table, inWindow: Word.Condition)

    /// Entry `index` of `table` at `level`. `active` holds exactly when the
    /// walk really reaches this read: the concrete walk stops before an
    /// inactive read, the symbolic one records it with its condition.
    mutating func load(_ table: Table, index: Word, level: Int, when active: Word.Condition) -> Word
}

/// What a walk found, in the walk's domain. At most one of `mapped` and
/// `torn` holds; neither means unmapped. The other fields mean something
/// only when `mapped` holds.
public struct WalkAnswer<Word: BitVectorDomain> {
    public var mapped: Word.Condition
    /// An entry pointed outside the window, or was not what its level
    /// allows (a leaf where none may be, a table below the lowest level).
    public var torn: Word.Condition
    /// The host-physical address the walked address maps to.
    public var hostAddress: Word
    /// The leaf's MappingFlags raw bits.
    public var flags: Word
    /// The leaf's level (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB).
    public var level: Word

    @inlinable init(mapped: Word.Condition, torn: Word.Condition, hostAddress: Word, flags: Word, level: Word) {
        self.mapped = mapped
        self.torn = torn
        self.hostAddress = hostAddress
        self.flags = flags
        self.level = level
    }
}

extension PageTableFormat {
    /// The page-table walk behind every translate, query and fault, written
    /// once for both domains: it never branches on what it reads except
    /// through `isCertainlyFalse`, which lets the concrete walk stop where
    /// the symbolic one carries on under a false condition.
    ///
    /// Starts at `table` of level `top` and descends through table entries
    /// down to `lowest` (a table entry there is torn: the two-load path
    /// asks for one level only). `start` gates the whole walk (the full walk
    /// passes "the address fits the format's width").
    @inlinable @inline(__always)
    public static func walk<M: TableMemory>(_ memory: inout M, from table: M.Table, level top: Int, through lowest: Int,
                                            _ gpa: M.Word, when start: M.Word.Condition) -> WalkAnswer<M.Word> {
        typealias W = M.Word
        var answer = WalkAnswer<W>(mapped: .constant(false), torn: .constant(false), hostAddress: .constant(0),
                                   flags: .constant(0), level: .constant(0))
        var active = start
        var table = table
        var level = top
        while !active.isCertainlyFalse {
            let e = memory.load(table, index: entryIndex(gpa, level: level), level: level, when: active)
            let present = active.and(isPresent(e))
            let leaf = present.and(isLeaf(e, level: level))
            // The concrete walk decodes a leaf only where there is one (the
            // symbolic walk always, under `leaf`): the same answer, without
            // decoding table entries as leaves on the way down.
            if leaf.isCertainlyFalse {
            } else if leafAllowed(level: level) {
                let mask = W.constant(span(level: level) - 1)
                answer.mapped = answer.mapped.or(leaf)
                answer.hostAddress = W.select(leaf, leafAddress(e, level: level) | (gpa & mask), answer.hostAddress)
                answer.flags = W.select(leaf, leafFlagBits(e), answer.flags)
                answer.level = W.select(leaf, .constant(UInt64(level)), answer.level)
            } else {
                answer.torn = answer.torn.or(leaf)
            }
            let descend = present.and(leaf.negated)
            if level == lowest {
                answer.torn = answer.torn.or(descend)
                break
            }
            // Nothing below a leaf or a hole: the concrete walk ends here.
            if descend.isCertainlyFalse { break }
            let next = memory.table(at: tableAddress(e))
            answer.torn = answer.torn.or(descend.and(next.inWindow.negated))
            active = descend.and(next.inWindow)
            table = next.table
            level -= 1
        }
        return answer
    }

    /// True when `gpa` fits the format's guest-address width; wider
    /// addresses are rejected before any entry is read.
    @inlinable @inline(__always)
    public static func fitsWidth<D: BitVectorDomain>(_ gpa: D) -> D.Condition {
        gpa.shiftedRight(by: guestAddressBits).isZero
    }

    /// The full walk from the root.
    @inlinable @inline(__always)
    public static func walkFromRoot<M: TableMemory>(_ memory: inout M, root: M.Table, _ gpa: M.Word) -> WalkAnswer<M.Word> {
        walk(&memory, from: root, level: levels - 1, through: 0, gpa, when: fitsWidth(gpa))
    }
}

/// The shipped table memory: the allocator's window, read with relaxed
/// atomic loads (a writer may be changing entries; see `EntryTable`).
@usableFromInline
struct WindowTableMemory<Observer: WalkObserver>: TableMemory {
    @usableFromInline let directMap: DirectMap
    @usableFromInline let observe: Observer

    @inlinable init(directMap: DirectMap, observe: Observer) {
        self.directMap = directMap
        self.observe = observe
    }

    @inlinable @inline(__always)
    func table(at address: UInt64) -> (table: UnsafeMutablePointer<UInt64>?, inWindow: Bool) {
        let p = directMap.pointer(address)?.assumingMemoryBound(to: UInt64.self)
        return (p, p != nil)
    }

    @inlinable @inline(__always)
    func load(_ table: UnsafeMutablePointer<UInt64>?, index: UInt64, level: Int, when active: Bool) -> UInt64 {
        // SAFETY: the walk reads only while `active`, which holds only for the
        // table it started at or one `table(at:)` found inside the window; the
        // index is masked to the table's entries by `entryIndex`.
        let e = EntryTable.sharedLoad(table.unsafelyUnwrapped, Int(truncatingIfNeeded: index))
        observe.entryRead(level: level)
        return e
    }
}
