/// Telegram's `parse_mode: HTML` (https://core.telegram.org/bots/api#html-style), strictly
/// enough to catch what breaks at Telegram: an unescaped `<` (user text pasted into a
/// message) or an unclosed tag is a 400 "can't parse entities". The result is the plain text
/// and its entities (offsets in UTF-16 code units, as the Bot API counts), plus safe HTML for
/// the inbox page (only the supported tags, links only to http(s)).
///
/// ```swift
/// let m = try TelegramHTML(#"Your <b>portraits</b>: <a href="https://x/g">gallery</a>"#)
/// m.plain      // "Your portraits: gallery"
/// m.entities   // bold 5+9, text_link 16+7
/// ```
struct TelegramHTML {
    struct Entity: Equatable {
        var type: String
        var offset: Int
        var length: Int
        var url: String?
    }

    struct Unparsable: Error, CustomStringConvertible {
        let reason: String
        var description: String { "Bad Request: can't parse entities: " + reason }
    }

    /// Supported tags and the entity each makes.
    static let tags: [String: String] = [
        "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
        "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
        "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
        "tg-emoji": "custom_emoji",
    ]

    private(set) var plain = ""
    private(set) var entities: [Entity] = []
    private(set) var safeHTML = ""

    /// Plain text: no entities, the text as it is.
    init(plain text: String) {
        plain = text
        safeHTML = Self.escape(text)
    }

    init(_ text: String) throws {
        var open: [(name: String, entity: Entity, close: String)] = []
        var length16 = 0
        var i = text.startIndex
        func byteOffset(_ at: String.Index) -> Int { text.utf8.distance(from: text.startIndex, to: at) }
        func append(_ s: String) {
            plain += s
            safeHTML += Self.escape(s)
            length16 += s.utf16.count
        }
        while i < text.endIndex {
            let c = text[i]
            if c == "<" {
                guard let close = text[i...].firstIndex(of: ">") else {
                    throw Unparsable(reason: "Unclosed start tag at byte offset \(byteOffset(i))")
                }
                let inside = text[text.index(after: i)..<close]
                if inside.hasPrefix("/") {
                    let name = inside.dropFirst().trimmed.lowercased()
                    guard let top = open.last else { throw Unparsable(reason: "Unexpected end tag at byte offset \(byteOffset(i))") }
                    guard top.name == name else {
                        throw Unparsable(reason: "Can't find end tag corresponding to start tag \"\(top.name)\"")
                    }
                    open.removeLast()
                    var entity = top.entity
                    entity.length = length16 - entity.offset
                    if entity.length > 0 { entities.append(entity) }
                    safeHTML += top.close
                } else {
                    let name = String(inside.prefix { !$0.isWhitespace }).lowercased()
                    let attributes = Self.attributes(inside.dropFirst(name.count))
                    guard let type = Self.tags[name], name != "span" || attributes["class"] == "tg-spoiler" else {
                        throw Unparsable(reason: "Unsupported start tag \"\(name)\" at byte offset \(byteOffset(i))")
                    }
                    var entity = Entity(type: type, offset: length16, length: 0)
                    var html = "<\(Self.htmlTag(name))>", closing = "</\(Self.htmlTag(name))>"
                    if name == "a" {
                        let href = attributes["href"] ?? ""
                        entity.url = href
                        if href.hasPrefix("https://") || href.hasPrefix("http://") {
                            html = "<a href=\"\(Self.escape(href))\" rel=\"noopener noreferrer\" target=\"_blank\">"
                        } else {
                            html = "<span class=\"link\">"; closing = "</span>"
                        }
                    }
                    safeHTML += html
                    open.append((name, entity, closing))
                }
                i = text.index(after: close)
            } else if c == "&", let decoded = Self.entity(text, at: i) {
                append(decoded.text)
                i = decoded.next
            } else {
                append(String(c))
                i = text.index(after: i)
            }
        }
        if let top = open.last { throw Unparsable(reason: "Can't find end tag corresponding to start tag \"\(top.name)\"") }
        entities.sort { ($0.offset, -$0.length) < ($1.offset, -$1.length) }
    }

    static func htmlTag(_ name: String) -> String {
        switch name {
        case "strong": return "b"
        case "em": return "i"
        case "ins": return "u"
        case "strike", "del": return "s"
        case "tg-spoiler", "span", "tg-emoji": return "span"
        default: return name
        }
    }

    /// `name="value"` / `name='value'` / `name=value` attributes of a start tag.
    static func attributes(_ text: Substring) -> [String: String] {
        var out: [String: String] = [:]
        var rest = text
        while true {
            rest = rest.drop { $0.isWhitespace }
            guard let eq = rest.firstIndex(of: "=") else { return out }
            let key = rest[..<eq].trimmed.lowercased()
            rest = rest[rest.index(after: eq)...].drop { $0.isWhitespace }
            var value: Substring
            if let q = rest.first, q == "\"" || q == "'" {
                rest = rest.dropFirst()
                let end = rest.firstIndex(of: q) ?? rest.endIndex
                value = rest[..<end]
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[end...]
            } else {
                let end = rest.firstIndex { $0.isWhitespace } ?? rest.endIndex
                value = rest[..<end]
                rest = rest[end...]
            }
            out[key] = decodeEntities(String(value))
        }
    }

    static func decodeEntities(_ s: String) -> String {
        var out = "", i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let d = entity(s, at: i) { out += d.text; i = d.next } else { out.append(s[i]); i = s.index(after: i) }
        }
        return out
    }

    /// `&lt;` `&gt;` `&amp;` `&quot;` and numeric references; nil for a bare `&` (kept as is).
    static func entity(_ s: String, at i: String.Index) -> (text: String, next: String.Index)? {
        guard let semi = s[i...].prefix(12).firstIndex(of: ";") else { return nil }
        let name = s[s.index(after: i)..<semi]
        let next = s.index(after: semi)
        switch name {
        case "lt": return ("<", next)
        case "gt": return (">", next)
        case "amp": return ("&", next)
        case "quot": return ("\"", next)
        default:
            guard name.hasPrefix("#") else { return nil }
            let digits = name.dropFirst()
            let value = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            guard let v = value, let scalar = Unicode.Scalar(v) else { return nil }
            return (String(Character(scalar)), next)
        }
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
