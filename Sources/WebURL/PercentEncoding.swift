/// Percent-encoding of URL parts (RFC 3986), the one copy for every target: query strings
/// the HTTP layer decodes, Telegram's init data, a provider's query parameter.
///
/// ```swift
/// percentEncode("a b/ü")            // "a%20b%2F%C3%BC"
/// percentDecode("a+b%2F")           // "a b/"
/// percentDecode("%zz")              // nil
/// ```

/// Every byte but the unreserved ones (`A–Z a–z 0–9 - _ . ~`) as `%XX` (upper-case hex).
public func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
        }
    }
    return out
}

/// Decodes `%XX` escapes and `+` (as in form encoding); nil for a malformed escape or bad UTF-8.
public func percentDecode(_ s: String, plusAsSpace: Bool = true) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(s.utf8.count)
    var it = Array(s.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%") {
            guard it.count >= 2, let hi = hexValue(it.popFirst()!), let lo = hexValue(it.popFirst()!) else { return nil }
            bytes.append(hi << 4 | lo)
        } else if b == UInt8(ascii: "+") && plusAsSpace {
            bytes.append(UInt8(ascii: " "))
        } else {
            bytes.append(b)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}
