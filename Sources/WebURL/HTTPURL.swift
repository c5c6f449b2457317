/// The parts of an absolute `http://` or `https://` URL that policy and logs look at, and
/// the one rule for showing a URL in a log line or an error: scheme, host, port and the
/// path up to the first segment that looks like a secret; never user info, query or fragment.
///
/// ```swift
/// let url = HTTPURL("https://api.telegram.org/bot123456:ABC-DEF/sendMessage?chat_id=1")!
/// url.redacted                        // "https://api.telegram.org/…"
/// HTTPURL("http://127.0.0.1:8080")!.isLoopback   // true
/// HTTPURL.redactingURLs(in: "GET https://h/x?key=1 failed")   // "GET https://h/x failed"
/// ```
public struct HTTPURL: Sendable, Equatable {
    /// `http` or `https`, lower case.
    public let scheme: String
    /// Lower case; an IPv6 address without its brackets.
    public let host: String
    public let port: Int?
    /// Empty or starting with `/`; without query and fragment.
    public let path: String

    public init?(_ text: String) {
        guard let sep = text.firstRange(of: "://") else { return nil }
        let scheme = text[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = text[sep.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var hostPart = authority
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portPart = after.dropFirst()
            }
            guard hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            }
            guard hostPart.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." || $0 == "_" })
            else { return nil }
        }
        guard !hostPart.isEmpty else { return nil }
        if let p = portPart {
            guard let n = Int(p), (1...65535).contains(n), p.allSatisfy(\.isNumber) else { return nil }
            port = n
        } else {
            port = nil
        }
        self.scheme = scheme
        self.host = hostPart.lowercased()
        let pathAndMore = rest[authorityEnd...]
        path = String(pathAndMore.prefix { $0 != "?" && $0 != "#" })
    }

    /// `localhost`, `::1` or an IPv4 address in 127.0.0.0/8: traffic that never leaves the machine.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return false }
        let values = octets.compactMap { o in o.count <= 3 && o.allSatisfy(\.isNumber) ? Int(o) : nil }
        return values.count == 4 && values.allSatisfy { $0 <= 255 } && values[0] == 127
    }

    /// Scheme, host, port and the path before the first secret-looking segment (then `…`).
    public var redacted: String {
        var out = scheme + "://" + (host.contains(":") ? "[\(host)]" : host) + (port.map { ":\($0)" } ?? "")
        for segment in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if Self.looksSecret(segment) { return out + "/…" }
            out += "/" + segment
        }
        return out
    }

    /// A path segment that may carry a credential: Telegram's `bot<id>:<token>`, anything
    /// with `:`, `@`, `=`, `;` or percent-encoding, and long runs with digits (API keys,
    /// hashes, unguessable object names).
    static func looksSecret(_ segment: Substring) -> Bool {
        if segment.contains(where: { ":@=;%".contains($0) }) { return true }
        if segment.hasPrefix("bot"), segment.dropFirst(3).first?.isNumber == true { return true }
        return segment.count >= 20 && segment.contains(where: \.isNumber)
    }

    /// The redacted form of `url`; a placeholder when it cannot be parsed (it is not shown).
    public static func redact(_ url: String) -> String {
        HTTPURL(url)?.redacted ?? "[unparsable URL]"
    }

    /// `text` with every `http://` or `https://` URL in it redacted (for error messages and
    /// log lines whose text came from elsewhere).
    public static func redactingURLs(in text: String) -> String {
        guard text.contains("://") else { return text }
        var out = ""
        var rest = Substring(text)
        while let start = Self.nextURLStart(in: rest) {
            out += rest[..<start]
            let end = rest[start...].firstIndex { $0.isWhitespace || "\"'<>\\`".contains($0) || $0.unicodeScalars.first!.value < 0x20 }
                ?? rest.endIndex
            out += redact(String(rest[start..<end]))
            rest = rest[end...]
        }
        return out + rest
    }

    private static func nextURLStart(in text: Substring) -> Substring.Index? {
        var i = text.startIndex
        while let sep = text[i...].firstRange(of: "://") {
            let before = text[..<sep.lowerBound]
            for scheme in ["https", "http"] where before.suffix(scheme.count).lowercased() == scheme {
                return text.index(sep.lowerBound, offsetBy: -scheme.count)
            }
            i = sep.upperBound
        }
        return nil
    }
}
