import HVCore

/// `hvkit check` output: a table for people, JSON lines for scripts, SARIF
/// 2.1.0 for code scanning.
public enum Report {
    static func json(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out += ch.value < 0x20 || ch.value == 0x7F ? "\\u" + String(repeating: "0", count: 4 - String(ch.value, radix: 16).count) + String(ch.value, radix: 16) : String(ch)
            }
        }
        return out + "\""
    }

    public static func text(_ findings: [Finding], files: Int) -> String {
        guard !findings.isEmpty else { return "hvkit check: \(files) file(s), no findings" }
        var rows = [["severity", "rule", "where", "entries", "witness", "message"]]
        for f in findings {
            rows.append([f.severity.rawValue, f.rule.rawValue, "\(f.file)\(f.line.map { ":\($0)" } ?? "")",
                         f.entries.joined(separator: ", "), f.witness.map(hex) ?? "-", f.message])
        }
        let widths = (0..<5).map { col in rows.map { $0[col].count }.max()! }
        let lines = rows.map { row in
            (0..<5).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count) }.joined(separator: "  ") + "  " + row[5]
        }
        let errors = findings.filter { $0.severity == .error }.count, notes = findings.filter { $0.severity == .note }.count
        return lines.joined(separator: "\n") + "\n\(errors) error(s), \(findings.count - errors - notes) warning(s), \(notes) note(s) in \(files) file(s)"
    }

    public static func jsonLines(_ findings: [Finding]) -> String {
        findings.map { f in
            "{\"rule\":\(json(f.rule.rawValue)),\"severity\":\(json(f.severity.rawValue)),\"file\":\(json(f.file)),\"line\":\(f.line.map(String.init) ?? "null"),\"entries\":[\(f.entries.map(json).joined(separator: ","))],\"witness\":\(f.witness.map { json(hex($0)) } ?? "null"),\"message\":\(json(f.message))}"
        }.joined(separator: "\n")
    }

    /// The last line of `--format json`: counts, the overlapping pairs the
    /// sweeps found, and the architecture each file was checked for.
    public static func jsonSummary(_ r: Checker.Result, files: Int) -> String {
        let count = { (s: Finding.Severity) in r.findings.filter { $0.severity == s }.count }
        let arches = r.architectures.map { "{\"file\":\(json($0.file)),\"arch\":\(json($0.arch.rawValue)),\"reason\":\(json($0.reason)),\"format\":\(json($0.format.rawValue))}" }
        return "{\"summary\":{\"files\":\(files),\"errors\":\(count(.error)),\"warnings\":\(count(.warning)),\"notes\":\(count(.note)),\"overlapping_pairs\":\(r.overlappingPairs),\"architectures\":[\(arches.joined(separator: ","))]}}"
    }

    public static func sarif(_ findings: [Finding]) -> String {
        let rules = Rule.allCases.map { r in
            "{\"id\":\(json(r.rawValue)),\"shortDescription\":{\"text\":\(json(r.summary))},\"defaultConfiguration\":{\"level\":\(json(r.severity.rawValue))}}"
        }
        let results = findings.map { f in
            let region = f.line.map { ",\"region\":{\"startLine\":\($0)}" } ?? ""
            let props = f.witness.map { ",\"properties\":{\"witness\":\(json(hex($0)))}" } ?? ""
            return "{\"ruleId\":\(json(f.rule.rawValue)),\"level\":\(json(f.severity.rawValue)),\"message\":{\"text\":\(json(f.message))},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\(json(f.file))}\(region)}}]\(props)}"
        }
        return "{\"version\":\"2.1.0\",\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"hvkit check\",\"informationUri\":\"https://github.com/hvkit\",\"rules\":[\(rules.joined(separator: ","))]}},\"results\":[\(results.joined(separator: ","))]}]}"
    }
}
