/// Content negotiation by `Accept-Language` (RFC 9110 §12.5.4): which of the languages a page
/// is written in the client prefers. Ranges are compared by their primary subtag (`ru-RU`
/// asks for `ru`), case-insensitively; `q` weights them (default 1, `q=0` refuses); `*` gives
/// its weight to every language no range names. The highest weight wins; a tie goes to the
/// range the client listed first, and a named range beats `*`; among languages only `*`
/// accepts, `fallback` first. Nothing acceptable (or no header) gives `fallback`.
///
/// ```swift
/// AcceptLanguage.pick("ru-RU,ru;q=0.9,en-US;q=0.8", from: ["en", "ru"], fallback: "en")   // "ru"
/// AcceptLanguage.pick("de, en;q=0.5", from: ["en", "ru"], fallback: "en")                  // "en"
/// AcceptLanguage.pick(nil, from: ["en", "ru"], fallback: "en")                              // "en"
/// ```
public enum AcceptLanguage {
    public static func pick(_ header: String?, from supported: [String], fallback: String) -> String {
        guard let header else { return fallback }
        // (primary subtag or "*", weight, position in the header)
        var ranges: [(tag: String, q: Double, at: Int)] = []
        for (at, part) in header.split(separator: ",").enumerated() {
            let pieces = part.split(separator: ";").map { $0.trimmingSpaces }
            guard let range = pieces.first, !range.isEmpty else { continue }
            var q = 1.0
            for p in pieces.dropFirst() where p.lowercased().hasPrefix("q=") {
                guard let v = Double(p.dropFirst(2)), v >= 0, v <= 1 else { q = -1; break }
                q = v
            }
            guard q >= 0 else { continue }   // a malformed weight: that range is ignored
            let primary = range.split(separator: "-", maxSplits: 1).first.map { $0.lowercased() } ?? ""
            ranges.append((primary, q, at))
        }
        var best: (lang: String, q: Double, at: Int)?
        for lang in [fallback] + supported.filter({ $0 != fallback }) {
            let named = ranges.filter { $0.tag == lang.lowercased() }
            let chosen = named.isEmpty ? ranges.filter { $0.tag == "*" }.map { (tag: $0.tag, q: $0.q, at: Int.max) } : named
            guard let top = chosen.max(by: { ($0.q, -$0.at) < ($1.q, -$1.at) }), top.q > 0 else { continue }
            if best == nil || top.q > best!.q || (top.q == best!.q && top.at < best!.at) { best = (lang, top.q, top.at) }
        }
        return best?.lang ?? fallback
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
