/// A `multipart/form-data` reader (RFC 7578 over RFC 2046 §5.1.1), as the Bot API takes
/// uploads: parts separated by `CRLF--boundary`, each with its own headers
/// (`Content-Disposition: form-data; name="…"; filename="…"`, optional `Content-Type`), a
/// preamble before the first delimiter and an epilogue after the closing `--boundary--`
/// ignored. Part bodies are bytes and may contain anything but the delimiter line itself.
///
/// ```swift
/// let boundary = try Multipart.boundary(contentType: "multipart/form-data; boundary=xyz")
/// let parts = try Multipart.parse(body, boundary: boundary)
/// parts.first { $0.name == "photo" }?.filename
/// ```
enum Multipart {
    struct Part: Equatable {
        var name: String
        var filename: String?
        var contentType: String?
        var data: [UInt8]
    }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    static let maxParts = 64
    static let maxHeaderBytes = 8192

    /// The `boundary` parameter of a multipart Content-Type (quoted or not, 1–70 characters).
    static func boundary(contentType: String) throws -> String {
        let params = parameters(contentType)
        guard let b = params["boundary"], (1...70).contains(b.utf8.count) else {
            throw Malformed(description: "multipart Content-Type without a boundary")
        }
        return b
    }

    static func parse(_ body: [UInt8], boundary: String) throws -> [Part] {
        let dash = Array("--".utf8) + Array(boundary.utf8)
        let delimiter = Array("\r\n".utf8) + dash
        // The first delimiter may open the body (no CRLF before it) or follow a preamble.
        var i: Int
        if body.starts(with: dash) {
            i = dash.count
        } else if let at = find(delimiter, in: body, from: 0) {
            i = at + delimiter.count
        } else {
            throw Malformed(description: "no multipart boundary in the body")
        }
        var parts: [Part] = []
        while true {
            // After a delimiter: "--" closes the body; else optional padding, then CRLF.
            if body[i...].starts(with: Array("--".utf8)) { return parts }
            while i < body.count, body[i] == 0x20 || body[i] == 0x09 { i += 1 }
            guard body[i...].starts(with: Array("\r\n".utf8)) else { throw Malformed(description: "bad multipart delimiter line") }
            i += 2
            // The blank line ends the headers; with no headers it follows the delimiter line
            // at once, so the search starts at that line's CRLF.
            guard let next = find(delimiter, in: body, from: i - 2),
                  let headerEnd = find(Array("\r\n\r\n".utf8), in: body, from: i - 2),
                  headerEnd + 4 <= next, headerEnd - i <= maxHeaderBytes else {
                throw Malformed(description: "multipart part without a blank line after its headers, or no closing boundary")
            }
            let head = headerEnd > i ? String(decoding: body[i..<headerEnd], as: UTF8.self) : ""
            let dataStart = headerEnd + 4
            guard let end = find(delimiter, in: body, from: dataStart) else {
                throw Malformed(description: "multipart body without its closing boundary")
            }
            var part = try headers(head)
            part.data = Array(body[dataStart..<end])
            parts.append(part)
            guard parts.count <= maxParts else { throw Malformed(description: "more than \(maxParts) multipart parts") }
            i = end + delimiter.count
            guard i < body.count else { throw Malformed(description: "multipart body ends after a boundary") }
        }
    }

    /// A part's headers: the form field's name is required.
    static func headers(_ head: String) throws -> Part {
        var name: String?, filename: String?, contentType: String?
        for line in head.split(separator: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw Malformed(description: "bad multipart header line") }
            let key = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...])
            switch key {
            case "content-disposition":
                guard value.split(separator: ";").first?.trimmed.lowercased() == "form-data" else {
                    throw Malformed(description: "multipart part is not form-data")
                }
                let p = parameters(value)
                name = p["name"]
                filename = p["filename"]
            case "content-type":
                contentType = value.trimmed
            default: break
            }
        }
        guard let name, !name.isEmpty else { throw Malformed(description: "multipart part without a name") }
        return Part(name: name, filename: filename, contentType: contentType, data: [])
    }

    /// `key=value` parameters after the first `;` of a header value, names in lower case;
    /// values may be quoted strings with backslash escapes.
    static func parameters(_ header: String) -> [String: String] {
        var out: [String: String] = [:]
        var rest = Substring(header)
        guard let semi = rest.firstIndex(of: ";") else { return out }
        rest = rest[rest.index(after: semi)...]
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == ";" }
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmed.lowercased()
            rest = rest[rest.index(after: eq)...].drop { $0 == " " || $0 == "\t" }
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else {
                        value.append(c)
                    }
                }
                rest = rest.drop { $0 != ";" }
            } else {
                let end = rest.firstIndex(of: ";") ?? rest.endIndex
                value = rest[..<end].trimmed
                rest = rest[end...]
            }
            if out[key] == nil { out[key] = value }
        }
        return out
    }

    /// The first index of `needle` in `haystack` at or after `from`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var i = max(0, from)
        let last = haystack.count - needle.count
        return haystack.withUnsafeBufferPointer { h in
            while i <= last {
                if h[i] == first {
                    var j = 1
                    while j < needle.count && h[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return i }
                }
                i += 1
            }
            return nil
        }
    }
}

extension StringProtocol {
    var trimmed: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
