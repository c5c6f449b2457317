/// An independent PNG reader for tests: checks the signature, every chunk's CRC-32, the
/// header, and decodes the zlib stream when it is made of stored blocks (checking Adler-32 and
/// the pixel data's size). Enough to tell that the simulator's images are real PNGs and whose.
///
/// ```swift
/// let png = try PNGCheck(bytes)
/// png.width; png.text["pinglass-task"]
/// ```
public struct PNGCheck {
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public let width: Int
    public let height: Int
    public let text: [String: String]
    /// Unfiltered scanlines (filter byte + RGB) when the stream is stored; nil when compressed.
    public let raw: [UInt8]?

    public init(_ bytes: [UInt8]) throws {
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw Invalid(description: "no PNG signature") }
        var i = 8, width = 0, height = 0, text: [String: String] = [:], idat: [UInt8] = [], ended = false
        func u32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        while i + 12 <= bytes.count && !ended {
            let length = u32(i)
            guard i + 12 + length <= bytes.count else { throw Invalid(description: "chunk runs past the end") }
            let typed = Array(bytes[(i + 4)..<(i + 8 + length)])
            guard Self.crc32(typed) == UInt32(u32(i + 8 + length)) else { throw Invalid(description: "bad CRC") }
            let type = String(decoding: typed[0..<4], as: UTF8.self)
            let data = Array(typed[4...])
            switch type {
            case "IHDR":
                width = Int(data[0]) << 24 | Int(data[1]) << 16 | Int(data[2]) << 8 | Int(data[3])
                height = Int(data[4]) << 24 | Int(data[5]) << 16 | Int(data[6]) << 8 | Int(data[7])
            case "tEXt":
                if let nul = data.firstIndex(of: 0) {
                    text[String(decoding: data[..<nul], as: UTF8.self)] = String(decoding: data[(nul + 1)...], as: UTF8.self)
                }
            case "IDAT": idat += data
            case "IEND": ended = true
            default: break
            }
            i += 12 + length
        }
        guard ended, width > 0, height > 0 else { throw Invalid(description: "no IHDR or IEND") }
        self.width = width
        self.height = height
        self.text = text
        raw = try Self.inflateStored(idat)
        if let raw, raw.count != height * (1 + 3 * width) { throw Invalid(description: "pixel data of \(raw.count) bytes") }
    }

    /// Bitwise (table-free) CRC-32, unlike the encoder's table: an independent check.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
        }
        return ~c
    }

    static func inflateStored(_ z: [UInt8]) throws -> [UInt8]? {
        guard z.count >= 6, (Int(z[0]) << 8 | Int(z[1])) % 31 == 0 else { throw Invalid(description: "bad zlib header") }
        var out: [UInt8] = [], i = 2
        while true {
            guard i + 5 <= z.count else { throw Invalid(description: "truncated zlib stream") }
            guard z[i] & 0b110 == 0 else { return nil }          // a compressed block: not ours to decode
            let n = Int(z[i + 1]) | Int(z[i + 2]) << 8
            guard n ^ (Int(z[i + 3]) | Int(z[i + 4]) << 8) == 0xFFFF, i + 5 + n <= z.count else { throw Invalid(description: "bad stored block") }
            out += z[(i + 5)..<(i + 5 + n)]
            let final = z[i] & 1 == 1
            i += 5 + n
            if final { break }
        }
        var a = 1, b = 0
        for x in out { a = (a + Int(x)) % 65521; b = (b + a) % 65521 }
        guard i + 4 <= z.count, (b << 16 | a) == Int(z[i]) << 24 | Int(z[i + 1]) << 16 | Int(z[i + 2]) << 8 | Int(z[i + 3]) else {
            throw Invalid(description: "bad Adler-32")
        }
        return out
    }
}
