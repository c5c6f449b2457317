/// A `/metrics` answer read back, as a scraper would: every sample by its series
/// (`name{label="value",…}` exactly as written), and the structural problems of the text
/// (a family typed twice, a sample outside its family, a malformed line).
///
/// ```swift
/// let scrape = PrometheusScrape(res.bodyText)
/// XCTAssertEqual(scrape.problems, [])
/// XCTAssertEqual(scrape[#"pinglass_jobs{status="queued"}"#], 3)
/// ```
public struct PrometheusScrape {
    public private(set) var samples: [String: Double] = [:]
    public private(set) var types: [String: String] = [:]
    public private(set) var helps: [String: String] = [:]
    public private(set) var problems: [String] = []

    public init(_ text: String) {
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.isEmpty { continue }
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { problems.append("bad comment: \(line)"); continue }
                if line.hasPrefix("# TYPE ") {
                    if types[parts[0]] != nil { problems.append("TYPE twice: \(parts[0])") }
                    if !["counter", "gauge", "histogram"].contains(parts[1]) { problems.append("unknown type: \(line)") }
                    types[parts[0]] = parts[1]
                    current = parts[0]
                } else {
                    if helps[parts[0]] != nil { problems.append("HELP twice: \(parts[0])") }
                    helps[parts[0]] = parts[1]
                }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) ?? Self.special(line[line.index(after: space)...]) else {
                problems.append("bad sample: \(line)")
                continue
            }
            let series = String(line[..<space])
            let name = String(series.prefix { $0 != "{" })
            if name != current && !(types[current ?? ""] == "histogram"
                                    && ["_bucket", "_sum", "_count"].contains { name == current! + $0 }) {
                problems.append("sample outside its family: \(line)")
            }
            if samples[series] != nil { problems.append("series twice: \(series)") }
            samples[series] = value
        }
        checkHistograms()
    }

    public subscript(series: String) -> Double? { samples[series] }

    /// A histogram's buckets must be cumulative (non-decreasing as `le` grows), end in `+Inf`,
    /// and that bucket must equal its `_count`.
    mutating func checkHistograms() {
        var buckets: [String: [(le: Double, value: Double)]] = [:]   // `name{other labels}` → buckets
        for (series, value) in samples {
            let name = String(series.prefix { $0 != "{" })
            guard name.hasSuffix("_bucket"), types[String(name.dropLast(7))] == "histogram",
                  let le = series.range(of: #"le="[^"]*""#, options: .regularExpression) else { continue }
            let bound = String(series[le].dropFirst(4).dropLast())
            guard let b = Double(bound) ?? Self.special(bound) else { problems.append("bad le: \(series)"); continue }
            var rest = series
            rest.removeSubrange(le)
            rest = rest.replacingOccurrences(of: ",,", with: ",").replacingOccurrences(of: "{,", with: "{")
                .replacingOccurrences(of: ",}", with: "}").replacingOccurrences(of: "{}", with: "")
            buckets[String(name.dropLast(7)) + "_count" + rest.dropFirst(name.count), default: []].append((b, value))
        }
        for (count, list) in buckets {
            let sorted = list.sorted { $0.le < $1.le }
            if zip(sorted, sorted.dropFirst()).contains(where: { $0.value > $1.value }) { problems.append("buckets not cumulative: \(count)") }
            if sorted.last?.le != .infinity { problems.append("no +Inf bucket: \(count)") }
            if samples[count] != sorted.last?.value { problems.append("+Inf bucket is not the count: \(count)") }
        }
    }

    /// The series of one family.
    public func family(_ name: String) -> [String: Double] {
        samples.filter { $0.key == name || $0.key.hasPrefix(name + "{") }
    }

    static func special<S: StringProtocol>(_ s: S) -> Double? {
        switch s {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return nil
        }
    }
}
