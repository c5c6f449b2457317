import Postgres
import LibCrypto
import ProviderWire

/// A stored reference selfie.
public struct ReferenceRecord: Equatable, Sendable {
    public let id: Int
    public let storageKey: String
    public let createdAt: String
}

/// One image offered for upload, as it came: raw body or one item of the JSON form.
public struct ReferenceUpload: Sendable {
    public let index: Int
    public let bytes: [UInt8]
    /// What the client said it is (Content-Type or the data URL's type), if anything.
    public let declaredType: String?

    public init(index: Int, bytes: [UInt8], declaredType: String?) {
        self.index = index
        self.bytes = bytes
        self.declaredType = declaredType
    }
}

/// Reference photos of an avatar: at most 20, at most 10 MB each, JPEG/PNG/WebP by their
/// bytes; the same image twice (same SHA-256) is stored once.
public enum References {
    public static let maxPerAvatar = 20
    public static let maxBytes = 10 << 20

    public struct Outcome: Sendable {
        /// The images stored, each with whether it was there already (the same bytes: the
        /// stored reference is returned, nothing is stored twice).
        public var uploaded: [(record: ReferenceRecord, duplicate: Bool)] = []
        public var rejected: [Rejection] = []
    }

    /// What kind of refusal (`Web/` names each with an error code).
    public enum Refusal: Equatable, Sendable {
        /// Not a JPEG, PNG or WebP by its bytes, or not what it was declared to be; empty.
        case unsupportedType
        /// Larger than `maxBytes`.
        case tooLarge
        /// The avatar has `maxPerAvatar` references already.
        case limitReached
        /// Not an image at all in the request's form (a JSON item that is no data URL).
        case malformed
    }

    /// An image of the request that was not stored: its position, why (for people) and what kind.
    public struct Rejection: Equatable, Sendable {
        public let index: Int
        public let reason: String
        public let kind: Refusal

        public init(index: Int, reason: String, kind: Refusal) {
            self.index = index
            self.reason = reason
            self.kind = kind
        }
    }

    /// Why an image cannot be stored (nil: it can).
    public static func problem(_ upload: ReferenceUpload) -> (kind: Refusal, reason: String)? {
        if upload.bytes.isEmpty { return (.unsupportedType, "empty image") }
        if upload.bytes.count > maxBytes { return (.tooLarge, "larger than 10 MB") }
        guard let type = ImageType.sniff(upload.bytes) else { return (.unsupportedType, "not a JPEG, PNG or WebP image") }
        if let declared = upload.declaredType?.lowercased(), declared != type, !(declared == "image/jpg" && type == "image/jpeg") {
            return (.unsupportedType, "the bytes are \(type), not \(declared)")
        }
        return nil
    }

    /// Stores each acceptable image: the object first (outside any transaction), then its row
    /// in a short transaction that locks the avatar, checks the limit and that no generation
    /// is running, and deduplicates by SHA-256 in the database (docs/reliability.md#R2). An object whose row
    /// was refused is removed again.
    public static func add(_ deps: Dependencies, userID: Int, avatarID: Int, _ uploads: [ReferenceUpload]) throws -> Outcome {
        _ = try Avatars.find(deps.db(), userID: userID, id: avatarID)
        var outcome = Outcome()
        for upload in uploads {
            if let why = problem(upload) {
                outcome.rejected.append(Rejection(index: upload.index, reason: why.reason, kind: why.kind))
                continue
            }
            let type = ImageType.sniff(upload.bytes)!
            let hash = Crypto.sha256(upload.bytes)
            let key = MediaKeys.reference(contentType: type)
            try deps.media.put(key: key, bytes: upload.bytes, contentType: type)
            let result: Result<ReferenceRecord, RefusedUpload>
            do { result = try deps.db().withTransaction { tx in
                guard try tx.query("SELECT 1 FROM avatars WHERE id = $1 AND user_id = $2 AND status <> 'deleted' FOR UPDATE",
                                   [avatarID, userID]).first != nil else { throw AvatarError.notFound }
                try Avatars.requireNoActiveJob(tx, avatarID: avatarID)
                if let existing = try tx.query("""
                    SELECT id, storage_key, \(createdColumn) FROM reference_photos WHERE avatar_id = $1 AND sha256 = $2
                    """, [avatarID, Bytea(hash)]).first {
                    return .failure(.duplicate(record(existing)))
                }
                let n = try tx.query("SELECT count(*)::int AS n FROM reference_photos WHERE avatar_id = $1", [avatarID])[0]
                if n.requiredInt("n") >= maxPerAvatar { return .failure(.limit) }
                let row = try tx.query("""
                    INSERT INTO reference_photos (avatar_id, storage_key, content_type, byte_size, sha256)
                    VALUES ($1, $2, $3, $4, $5) RETURNING id, storage_key, \(createdColumn)
                    """, [avatarID, key, type, upload.bytes.count, Bytea(hash)])[0]
                try tx.execute("UPDATE avatars SET status = 'ready', updated_at = now() WHERE id = $1 AND status = 'draft'", [avatarID])
                return .success(record(row))
            } } catch {
                // No row, no object: a refused upload (a job started meanwhile, the avatar went,
                // the database failed) leaves no face behind.
                try? deps.media.delete(key: key)
                throw error
            }
            switch result {
            case .success(let r): outcome.uploaded.append((r, false))
            case .failure(.duplicate(let r)):
                try? deps.media.delete(key: key)
                outcome.uploaded.append((r, true))
            case .failure(.limit):
                try? deps.media.delete(key: key)
                outcome.rejected.append(Rejection(index: upload.index, reason: "the avatar already has \(maxPerAvatar) reference photos",
                                                  kind: .limitReached))
            }
        }
        return outcome
    }

    enum RefusedUpload: Error { case duplicate(ReferenceRecord), limit }

    public static func list(_ db: some Queryable, userID: Int, avatarID: Int) throws -> [ReferenceRecord] {
        _ = try Avatars.find(db, userID: userID, id: avatarID)
        return try db.query("""
            SELECT id, storage_key, \(createdColumn) FROM reference_photos WHERE avatar_id = $1 ORDER BY created_at, id
            """, [avatarID], retry: .idempotent).map(record)
    }

    /// Removes one reference (refused while a generation of the avatar runs), then its object;
    /// the avatar is `draft` again when it was the last one.
    public static func delete(_ deps: Dependencies, userID: Int, avatarID: Int, referenceID: Int) throws {
        let key: String = try deps.db().withTransaction { tx in
            guard try tx.query("SELECT 1 FROM avatars WHERE id = $1 AND user_id = $2 AND status <> 'deleted' FOR UPDATE",
                               [avatarID, userID]).first != nil else { throw AvatarError.notFound }
            try Avatars.requireNoActiveJob(tx, avatarID: avatarID)
            guard let row = try tx.query("DELETE FROM reference_photos WHERE id = $1 AND avatar_id = $2 RETURNING storage_key",
                                         [referenceID, avatarID]).first else { throw AvatarError.notFound }
            try Avatars.draftIfNoReferences(tx, avatarIDs: [avatarID])
            return row.requiredString("storage_key")
        }
        try? deps.media.delete(key: key)
    }

    static let createdColumn = #"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created"#

    static func record(_ r: Row) -> ReferenceRecord {
        ReferenceRecord(id: r.requiredInt("id"), storageKey: r.requiredString("storage_key"), createdAt: r.requiredString("created"))
    }
}
