/// The image types we accept, told by their first bytes (never by a client's word): what
/// users upload, what Kie returns and what Telegram takes (the simulator checks the same way).
public enum ImageType {
    public static let accepted = ["image/jpeg", "image/png", "image/webp"]

    /// `image/jpeg`, `image/png` or `image/webp` when the bytes start like one; nil otherwise.
    public static func sniff(_ bytes: [UInt8]) -> String? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return "image/jpeg" }
        if bytes.count >= 8, bytes.prefix(8).elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if bytes.count >= 12, bytes.prefix(4).elementsEqual(Array("RIFF".utf8)), bytes[8..<12].elementsEqual(Array("WEBP".utf8)) {
            return "image/webp"
        }
        return nil
    }

    public static func fileExtension(_ contentType: String) -> String {
        switch contentType {
        case "image/png": return "png"
        case "image/webp": return "webp"
        default: return "jpg"
        }
    }
}
