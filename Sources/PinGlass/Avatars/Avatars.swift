import Logging
import Postgres
import Platform

/// An avatar as the API shows it.
public struct AvatarRecord: Equatable, Sendable {
    public let id: Int
    public let name: String
    public let status: String
    public let referenceCount: Int
    public let photoCount: Int
    public let createdAt: String

    static let columns = """
        a.id, a.name, a.status,
        (SELECT count(*) FROM reference_photos r WHERE r.avatar_id = a.id)::int AS refs,
        (SELECT count(*) FROM generated_photos g
         WHERE g.avatar_id = a.id AND g.released_at IS NOT NULL AND g.media_removed_at IS NULL)::int AS photos,
        to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created
        """

    package init(_ r: Row) {
        id = r.requiredInt("id")
        name = r.requiredString("name")
        status = r.requiredString("status")
        referenceCount = r.requiredInt("refs")
        photoCount = r.requiredInt("photos")
        createdAt = r.requiredString("created")
    }
}

/// A photo made for an avatar and already released to its owner.
public struct AvatarPhoto: Equatable, Sendable {
    public let id: Int
    public let jobID: Int
    public let storageKey: String
}

/// Why an avatar operation did not happen (`Web/` maps these to answers).
public enum AvatarError: Error, Equatable, CustomStringConvertible {
    case notFound
    case invalidName
    case limitReached(Int)
    /// A generation of this avatar is queued or running.
    case jobRunning

    public var description: String {
        switch self {
        case .notFound: return "avatar not found"
        case .invalidName: return "name must be 1 to 100 characters"
        case .limitReached(let n): return "at most \(n) avatars per user"
        case .jobRunning: return "a generation of this avatar is running; try again when it has finished"
        }
    }
}

/// A user's avatars. Every query is scoped to the caller: another user's avatar is "not found".
public enum Avatars {
    public static let maxPerUser = 3

    public static func create(_ db: Connection, userID: Int, name: String) throws -> AvatarRecord {
        let name = try validName(name)
        return try db.withTransaction { tx in
            // Serialise this user's creations so the limit cannot be raced past.
            try tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [userID])
            let n = try tx.query("SELECT count(*)::int AS n FROM avatars WHERE user_id = $1 AND status <> 'deleted'", [userID])[0]
            if n.requiredInt("n") >= maxPerUser { throw AvatarError.limitReached(maxPerUser) }
            let id = try tx.query("INSERT INTO avatars (user_id, name) VALUES ($1, $2) RETURNING id", [userID, name])[0].requiredInt("id")
            return try find(tx, userID: userID, id: id)
        }
    }

    public static func list(_ db: some Queryable, userID: Int) throws -> [AvatarRecord] {
        try db.query(listSQL(user: "$1") + " ORDER BY \(listOrder(nil))", [userID], retry: .idempotent).map(AvatarRecord.init)
    }

    /// A user's avatars (the user as an SQL expression), unordered: order by `listOrder`.
    package static func listSQL(user: String) -> String {
        "SELECT \(AvatarRecord.columns), a.created_at AS sort_at FROM avatars a WHERE a.user_id = \(user) AND a.status <> 'deleted'"
    }

    package static func listOrder(_ alias: String?) -> String { alias.map { "\($0).sort_at, \($0).id" } ?? "sort_at, id" }

    public static func find(_ db: some Queryable, userID: Int, id: Int) throws -> AvatarRecord {
        guard let r = try db.query("""
            SELECT \(AvatarRecord.columns) FROM avatars a WHERE a.id = $1 AND a.user_id = $2 AND a.status <> 'deleted'
            """, [id, userID], retry: .idempotent).first else { throw AvatarError.notFound }
        return AvatarRecord(r)
    }

    /// The photos of an avatar (found with `find`, so the caller's) released to its owner and still
    /// stored, oldest first.
    public static func releasedPhotos(_ db: some Queryable, avatarID: Int) throws -> [AvatarPhoto] {
        try db.query("""
            SELECT id, job_id, storage_key FROM generated_photos
            WHERE avatar_id = $1 AND released_at IS NOT NULL AND media_removed_at IS NULL ORDER BY id
            """, [avatarID], retry: .idempotent).map {
            AvatarPhoto(id: $0.requiredInt("id"), jobID: $0.requiredInt("job_id"), storageKey: $0.requiredString("storage_key"))
        }
    }

    /// The avatar's newest generation job, if it has one.
    public static func latestJobID(_ db: some Queryable, avatarID: Int) throws -> Int? {
        try db.query("SELECT id FROM generation_jobs WHERE avatar_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
                     [avatarID], retry: .idempotent).first?.requiredInt("id")
    }

    public static func rename(_ db: Connection, userID: Int, id: Int, name: String) throws -> AvatarRecord {
        let name = try validName(name)
        let n = try db.execute("""
            UPDATE avatars SET name = $3, updated_at = now() WHERE id = $1 AND user_id = $2 AND status <> 'deleted'
            """, [id, userID, name], retry: .idempotent)
        guard n == 1 else { throw AvatarError.notFound }
        return try find(db, userID: userID, id: id)
    }

    /// Marks the avatar deleted, forgets its references and marks its generated photos removed
    /// in one transaction (refused while a generation of it is queued or running, and while
    /// one of its photos is being sent: `MediaRemoval`), then removes its stored objects. An
    /// object that fails to delete is logged and left for `pinglass prune` (a name nobody can
    /// guess, no link handed out any more).
    public static func delete(_ deps: Dependencies, userID: Int, id: Int, log: Logger) throws {
        let keys: [String] = try deps.db().withTransaction { tx in
            guard try tx.query("SELECT 1 FROM avatars WHERE id = $1 AND user_id = $2 AND status <> 'deleted' FOR UPDATE",
                               [id, userID]).first != nil else { throw AvatarError.notFound }
            try requireNoActiveJob(tx, avatarID: id)
            let refs = try tx.query("DELETE FROM reference_photos WHERE avatar_id = $1 RETURNING storage_key", [id])
            let photos = try MediaRemoval.removeGenerated(tx, photos: "SELECT id FROM generated_photos WHERE avatar_id = $1", [id],
                                                          reason: "withdrawn: the customer deleted the avatar")
            try tx.execute("UPDATE avatars SET status = 'deleted', updated_at = now() WHERE id = $1", [id])
            return refs.map { $0.requiredString("storage_key") } + photos
        }
        MediaRemoval.deleteObjects(deps.media, keys, log: log)
    }

    /// An avatar's status follows its selfies: `ready` once it has one (`References.add`),
    /// `draft` again when its last one went (`References.delete`, the retention pass of
    /// `pinglass prune`), so the Mini App asks for selfies instead of offering a generation
    /// that would be refused. Call in the transaction that deleted them, the avatars locked;
    /// guarded on `ready` and on no selfie being left. Returns how many became `draft`.
    @discardableResult
    static func draftIfNoReferences(_ tx: Transaction, avatarIDs: [Int]) throws -> Int {
        guard !avatarIDs.isEmpty else { return 0 }
        return try tx.execute("""
            UPDATE avatars a SET status = 'draft', updated_at = now()
            WHERE a.id = ANY($1::bigint[]) AND a.status = 'ready'
              AND NOT EXISTS (SELECT 1 FROM reference_photos r WHERE r.avatar_id = a.id)
            """, [avatarIDs.map(String.init)])
    }

    /// Throws `jobRunning` while a generation of the avatar is queued or processing. Call with
    /// the avatar row locked, so no job can start in between.
    static func requireNoActiveJob(_ tx: Transaction, avatarID: Int) throws {
        if try tx.query("SELECT 1 FROM generation_jobs WHERE avatar_id = $1 AND status IN ('queued', 'processing') LIMIT 1",
                        [avatarID]).first != nil {
            throw AvatarError.jobRunning
        }
    }

    static func validName(_ name: String) throws -> String {
        let trimmed = name.trimmingSpaces()
        guard (1...100).contains(trimmed.count) else { throw AvatarError.invalidName }
        return trimmed
    }
}
