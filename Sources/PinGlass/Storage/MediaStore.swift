import LibCrypto
import ProviderWire

/// Where photos live: reference selfies and generated portraits. Faces are personal data, so
/// nothing is public: every URL handed out is signed and expires.
///
/// Two backends, in the Providers target: `FileMediaStore` (files under `STORAGE_DIR`, served
/// by nginx with `secure_link`) and `S3MediaStore` (R2, S3, MinIO; presigned GET URLs).
/// `Dependencies.media` refuses every call but `signedURL` inside a database transaction.
///
/// ```swift
/// let key = MediaKeys.reference(contentType: "image/jpeg")
/// try deps.media.put(key: key, bytes: jpeg, contentType: "image/jpeg")
/// let url = deps.media.signedURL(key: key, expiresIn: MediaLinks.apiTTL, now: deps.clock())
/// ```
public protocol MediaStore: AnyObject {
    /// Stores `bytes` under `key`, replacing what was there (a retried upload overwrites).
    /// Atomic: a reader sees the old object or the new one, never a part.
    func put(key: String, bytes: [UInt8], contentType: String) throws
    /// The stored bytes (multipart delivery to Telegram from local runs).
    func get(key: String) throws -> [UInt8]
    /// Removes the object; removing a missing one is not an error.
    func delete(key: String) throws
    /// A URL that serves the object to whoever holds it until `expiresIn` seconds after `now`.
    func signedURL(key: String, expiresIn: Int, now: Double) -> String
    /// Up to `limit` objects whose keys start with `prefix` (a folder: `references/`) and sort
    /// after `after`, in key order, with when each was last written. For finding objects
    /// nobody references (`pinglass prune`); a page shorter than `limit` is the last.
    func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject]
}

/// An object in the store, as `MediaStore.list` finds it.
public struct StoredObject: Equatable, Sendable {
    public let key: String
    /// Seconds since the epoch when it was last written (the store's own clock).
    public let modifiedAt: Double
    public init(key: String, modifiedAt: Double) { self.key = key; self.modifiedAt = modifiedAt }
}

/// What went wrong with stored media.
public enum MediaStoreError: Error, Equatable, CustomStringConvertible {
    case notFound(key: String)
    /// The store did not answer or refused (network, permissions, disk full): may be retried.
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound(let key): return "no stored object \(key)"
        case .unavailable(let why): return "media storage unavailable: \(why)"
        }
    }
}

/// How long signed links live.
public enum MediaLinks {
    /// Links in API answers: about a day (the Mini App shows them, a user may come back later).
    public static let apiTTL = 24 * 3600
    /// Links given to Kie for reference photos: long enough for a queued task to fetch them.
    public static let providerTTL = 2 * 3600
}

/// Object names. Unguessable: 128 random bits for references; for results derived with an
/// HMAC of (job, task) under `MEDIA_KEY_SECRET`, so a retried upload of the same result
/// lands on the same name instead of a second copy.
public enum MediaKeys {
    /// The folders every key lives in: what `prune` looks through for objects without a row
    /// (anything else in a shared bucket is not ours to delete).
    public static let folders = ["references/", "generated/"]

    public static func reference(contentType: String) -> String {
        "references/" + Crypto.hex(Crypto.randomBytes(16)) + "." + ImageType.fileExtension(contentType)
    }

    public static func result(jobID: Int, taskID: Int, contentType: String, secret: String) -> String {
        let mac = Crypto.hmacSHA256(key: Array(secret.utf8), message: Array("result:\(jobID):\(taskID)".utf8))
        return "generated/" + Crypto.hex(Array(mac.prefix(16))) + "." + ImageType.fileExtension(contentType)
    }

    /// A relative name that stays inside the store: not empty, no leading `/`, no empty, `.`
    /// or `..` segment. Stores refuse other keys whatever their origin.
    public static func isValid(_ key: String) -> Bool {
        !key.isEmpty && !key.hasPrefix("/") && !key.contains("\0")
            && !key.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }
}
