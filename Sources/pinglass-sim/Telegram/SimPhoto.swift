import HTTPClient
import Postgres
import JSON
import ProviderWire
import WebURL

/// A Bot API refusal: the HTTP status and `error_code`, the `description`, and
/// `parameters` when there are any (docs/providers.md#telegram-envelope).
struct BotError: Error {
    var status: Int
    var description: String
    var parameters: JSON?

    static func badRequest(_ what: String) -> BotError { BotError(status: 400, description: "Bad Request: " + what) }

    static let urlContent = badRequest("failed to get HTTP URL content")
    static let wrongWebPageType = badRequest("wrong type of the web page content")
    static let wrongFileID = badRequest("wrong file identifier/HTTP URL specified")
}

/// A photo of a call, resolved to bytes: uploaded in the request, fetched from its URL the
/// way Telegram fetches (docs/providers.md#telegram-files: ≤ 5 MB by URL, ≤ 10 MB uploaded, an image by its bytes and
/// Content-Type), or an earlier photo named by the file id the simulator handed out.
struct SimPhoto {
    var bytes: [UInt8]
    var contentType: String
    var width: Int
    var height: Int
    /// `upload`, `url` or `file_id`.
    var source: String
    var url: String?

    static let maxUploadBytes = 10 << 20
    static let maxURLBytes = 5 << 20

    /// The simulator's file ids: `SIMPHOTO-<stored photo id>`.
    static func fileID(_ storedID: Int) -> String { "SIMPHOTO-\(storedID)" }

    /// How a call names a photo: an uploaded part (sendPhoto's `photo` file) or a string
    /// (URL, `attach://name`, file id).
    enum Reference {
        case upload(Multipart.Part)
        case text(String)
    }

    /// Resolves every photo of one call; URLs are fetched concurrently. The first problem
    /// refuses the whole call, as Telegram does.
    static func resolve(_ refs: [Reference], files: [String: Multipart.Part], db: Connection, http: HTTPClient,
                        settings: TelegramSettings) throws(BotError) -> [SimPhoto] {
        var photos: [SimPhoto?] = Array(repeating: nil, count: refs.count)
        var fetches: [(index: Int, url: String)] = []
        for (i, ref) in refs.enumerated() {
            switch ref {
            case .upload(let part): photos[i] = try uploaded(part)
            case .text(let s) where s.hasPrefix("attach://"):
                let name = String(s.dropFirst("attach://".count))
                guard let part = files[name] else {
                    throw .badRequest("media \"\(name.prefix(64))\" is not attached: no uploaded part of that name")
                }
                photos[i] = try uploaded(part)
            case .text(let s) where s.lowercased().hasPrefix("http://") || s.lowercased().hasPrefix("https://"):
                guard let url = HTTPURL(s) else { throw .wrongFileID }
                if settings.rejectLoopbackURLs && url.isLoopback { throw .urlContent }
                fetches.append((i, s))
            case .text(let s):
                photos[i] = try stored(s, db)
            }
        }
        let requests = fetches.map {
            HTTPRequest(url: $0.url, headers: [("User-Agent", "TelegramBot (like TwitterBot)")], timeout: settings.urlFetchTimeoutSeconds,
                        maxResponseBytes: maxURLBytes)
        }
        for (fetch, result) in zip(fetches, http.sendAll(requests, maxConcurrent: 10)) {
            guard case .success(let r) = result, r.status == 200, !r.body.isEmpty else { throw .urlContent }
            if let declared = r.header("content-type"), !declared.lowercased().hasPrefix("image/") { throw .wrongWebPageType }
            guard let type = ImageType.sniff(r.body) else { throw .wrongWebPageType }
            photos[fetch.index] = try checked(SimPhoto(bytes: r.body, contentType: type, width: 0, height: 0, source: "url", url: fetch.url))
        }
        return photos.map { $0! }
    }

    static func uploaded(_ part: Multipart.Part) throws(BotError) -> SimPhoto {
        guard part.data.count <= maxUploadBytes else { throw .badRequest("file is too big") }
        guard let type = ImageType.sniff(part.data) else { throw .badRequest("IMAGE_PROCESS_FAILED") }
        return try checked(SimPhoto(bytes: part.data, contentType: type, width: 0, height: 0, source: "upload"))
    }

    static func stored(_ fileID: String, _ db: Connection) throws(BotError) -> SimPhoto {
        guard fileID.hasPrefix("SIMPHOTO-"), let id = Int(fileID.dropFirst("SIMPHOTO-".count)),
              let photo = try? TelegramStore.photo(db, id) else { throw .wrongFileID }
        return SimPhoto(bytes: photo.bytes, contentType: photo.contentType, width: photo.width, height: photo.height, source: "file_id")
    }

    /// docs/providers.md#telegram-files: "width and height must not exceed 10000 in total; ratio at most 20".
    static func checked(_ photo: SimPhoto) throws(BotError) -> SimPhoto {
        guard let size = ImageSize.of(photo.bytes) else { throw .badRequest("IMAGE_PROCESS_FAILED") }
        let (w, h) = size
        guard w > 0, h > 0 else { throw .badRequest("IMAGE_PROCESS_FAILED") }
        guard w + h <= 10000, max(w, h) <= 20 * min(w, h) else { throw .badRequest("PHOTO_INVALID_DIMENSIONS") }
        var p = photo
        p.width = w
        p.height = h
        return p
    }
}

/// Width and height from an image's header: PNG (IHDR), JPEG (the first SOF marker), WebP
/// (VP8, VP8L, VP8X).
enum ImageSize {
    static func of(_ b: [UInt8]) -> (Int, Int)? {
        func be16(_ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
        func le16(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func le24(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 }
        switch ImageType.sniff(b) {
        case "image/png":
            guard b.count >= 24 else { return nil }
            return (be16(16) << 16 | be16(18), be16(20) << 16 | be16(22))
        case "image/jpeg":
            var i = 2
            while i + 9 < b.count {
                guard b[i] == 0xFF else { return nil }
                let marker = b[i + 1]
                if marker == 0xFF { i += 1; continue }
                if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
                if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                    return (be16(i + 7), be16(i + 5))
                }
                i += 2 + be16(i + 2)
            }
            return nil
        case "image/webp":
            guard b.count >= 30 else { return nil }
            switch String(decoding: b[12..<16], as: UTF8.self) {
            case "VP8 ": return (le16(26) & 0x3FFF, le16(28) & 0x3FFF)
            case "VP8L":
                let bits = Int(b[21]) | Int(b[22]) << 8 | Int(b[23]) << 16 | Int(b[24]) << 24
                return ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            case "VP8X": return (le24(24) + 1, le24(27) + 1)
            default: return nil
            }
        default:
            return nil
        }
    }
}
