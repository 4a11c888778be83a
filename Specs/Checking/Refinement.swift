import HVCore

/// I5 refinement: the implementation's translations equal the model's for
/// every page. Fixed backings are compared leaf by leaf against their host
/// formula; owning areas page by page against the model's frame tokens,
/// through a binding from token to host frame that must never change while
/// the token lives (a replaced frame is a different host address).
public struct Refinement {
    public private(set) var binding: [FrameToken: UInt64] = [:]

    public init() {}

    public mutating func check(_ model: SpecState, _ o: ObservedState) -> [String] {
        var problems: [String] = []
        binding = binding.filter { model.ledger[$0.key] != nil }
        var hostOwner: [UInt64: FrameToken] = [:]
        for (t, h) in binding { hostOwner[h] = t }
        for s in model.spaces.indices {
            let spec = model.spaces[s], seen = o.spaces[s]
            if spec.areas != seen.areas {
                problems.append("space \(s) areas differ:\n  model: \(spec.areas)\n  impl:  \(seen.areas)")
                continue
            }
            var presentOwned = 0
            for leaf in seen.leaves {
                guard let a = spec.areas.first(where: { $0.contains(leaf.gpa.raw) }) else {
                    problems.append("space \(s) leaf \(leaf.gpa) lies in no area"); continue
                }
                if leaf.gpa.raw + leaf.pageSize.bytes > a.end { problems.append("space \(s) leaf \(leaf.gpa) +\(leaf.pageSize) runs past \(a)") }
                if leaf.flags != a.flags { problems.append("space \(s) page \(leaf.gpa) has \(leaf.flags), model \(a.flags)") }
                if !a.backing.ownsFrames {
                    if let host = a.fixedHost(leaf.gpa.raw), host != leaf.hpa.raw {
                        problems.append("space \(s) page \(leaf.gpa) -> \(leaf.hpa), model \(hex(host))")
                    }
                    continue
                }
                for k in 0..<(leaf.pageSize.bytes / 0x1000) {
                    let page = leaf.gpa.raw + k * 0x1000, host = leaf.hpa.raw + k * 0x1000
                    presentOwned += 1
                    guard let token = spec.frames[page] else {
                        problems.append("space \(s) page \(hex(page)) is present; the model says absent"); continue
                    }
                    if let bound = binding[token] {
                        if bound != host { problems.append("space \(s) page \(hex(page)) changed frame \(hex(bound)) -> \(hex(host))") }
                    } else {
                        if let other = hostOwner[host] { problems.append("host \(hex(host)) is bound to tokens \(other) and \(token)") }
                        if let identity = model.identityHost[token], identity != host {
                            problems.append("identity page \(hex(page)) is backed by \(hex(host))")
                        }
                        binding[token] = host
                        hostOwner[host] = token
                    }
                }
            }
            // Fixed areas must be fully present; owning areas exactly as the model says.
            for a in spec.areas where !a.backing.ownsFrames {
                let covered = seen.leaves.filter { a.contains($0.gpa.raw) }.reduce(UInt64(0)) { $0 + $1.pageSize.bytes }
                if covered != a.size { problems.append("space \(s) area \(a) has \(hex(covered)) of \(hex(a.size)) bytes mapped") }
            }
            if presentOwned != spec.frames.count {
                problems.append("space \(s) has \(presentOwned) present owned pages, model \(spec.frames.count)")
            }
            // A quarantined token's frame is one the space really holds back.
            let held = Set(seen.quarantinedFrames)
            for token in spec.quarantine {
                if let host = binding[token], !held.contains(host) {
                    problems.append("space \(s) token \(token)'s frame \(hex(host)) was released before its invalidation")
                }
            }
        }
        return problems
    }
}
