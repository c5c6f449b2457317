import HTTPCore
import PinGlass
import JSON
import LibCrypto
import Platform
import ProviderWire

/// Avatars and their reference photos (docs/http-api.md). Every route is the caller's
/// own: another user's avatar is 404.
enum AvatarsRoutes {
    static func create(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let name = try ctx.jsonBody()["name"]?.stringValue ?? ""
        let avatar = try Avatars.create(ctx.db(), userID: user.id, name: name)
        return .json(["avatar": json(avatar)], status: 201)
    }

    /// The user and the avatars in one statement.
    static func list(_ ctx: Context) throws -> Response {
        let (_, rows) = try Authentication.read(ctx, Avatars.listSQL(user: "me.id"), orderBy: Avatars.listOrder("x"))
        return .json(["avatars": .array(rows.map { json(AvatarRecord($0)) })])
    }

    static func show(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let db = try ctx.db()
        let avatar = try Avatars.find(db, userID: user.id, id: try avatarID(ctx))
        var body = json(avatar)
        guard case .object(var fields) = body else { return .json(body) }
        fields.append(("references", .array(try References.list(db, userID: user.id, avatarID: avatar.id).map { reference($0, ctx) })))
        fields.append(("photos", .array(try Avatars.releasedPhotos(db, avatarID: avatar.id).map { p in
            ["id": .int(p.id), "jobId": .int(p.jobID), "url": .string(link(p.storageKey, ctx))]
        })))
        let latest = try Avatars.latestJobID(db, avatarID: avatar.id)
        fields.append(("latestJob", try latest.map {
            GenerationRoutes.json(try JobProgress.load(db, userID: user.id, jobID: $0, retention: GenerationRoutes.retention(ctx)), ctx)
        } ?? .null))
        body = .object(fields)
        return .json(body)
    }

    static func rename(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let name = try ctx.jsonBody()["name"]?.stringValue ?? ""
        return .json(["avatar": json(try Avatars.rename(ctx.db(), userID: user.id, id: try avatarID(ctx), name: name))])
    }

    static func delete(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        try Avatars.delete(ctx.deps, userID: user.id, id: try avatarID(ctx), log: ctx.log)
        return Response(status: 204)
    }

    /// Raw image bytes (`image/jpeg|png|webp`) or the original client's JSON form
    /// `{"referenceImages":["data:image/jpeg;base64,…", …]}`.
    static func addReferences(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let id = try avatarID(ctx)
        let contentType = (ctx.request.header("content-type") ?? "").lowercased()
        if contentType.hasPrefix("application/json") {
            guard let items = try ctx.jsonBody()["referenceImages"]?.arrayValue, !items.isEmpty else {
                throw APIError.validation("referenceImages must be a non-empty array of data URLs")
            }
            return answer(try storeDataURLs(ctx, items, userID: user.id, avatarID: id), ctx)
        }
        let declared = contentType.split(separator: ";").first.map { String($0).trimmingSpaces() }
        guard let declared, ImageType.accepted.contains(declared) || declared == "image/jpg" else {
            throw APIError.unsupportedMediaType("send image/jpeg, image/png or image/webp bytes, or JSON {\"referenceImages\": [data URLs]}")
        }
        let upload = ReferenceUpload(index: 0, bytes: ctx.request.body, declaredType: declared)
        if upload.bytes.count > References.maxBytes {
            throw APIError(status: 413, code: "PAYLOAD_TOO_LARGE", message: "an image may be 10 MB at most")
        }
        if let why = References.problem(upload) { throw APIError.unsupportedMediaType(why.reason) }
        return answer(try References.add(ctx.deps, userID: user.id, avatarID: id, [upload]), ctx)
    }

    /// The original client's JSON form (here and in `POST /api/generate`): each data URL
    /// decoded and stored with the same checks as raw bytes; what cannot be is `rejected`.
    static func storeDataURLs(_ ctx: Context, _ items: [JSON], userID: Int, avatarID: Int) throws -> References.Outcome {
        guard items.count <= References.maxPerAvatar else {
            throw APIError.validation("at most \(References.maxPerAvatar) images per request")
        }
        var uploads: [ReferenceUpload] = []
        var rejected: [References.Rejection] = []
        for (i, item) in items.enumerated() {
            guard let (type, bytes) = item.stringValue.flatMap(dataURL) else {
                rejected.append(References.Rejection(index: i, reason: "not a base64 data URL (data:image/jpeg;base64,…)", kind: .malformed))
                continue
            }
            uploads.append(ReferenceUpload(index: i, bytes: bytes, declaredType: type))
        }
        var outcome = try References.add(ctx.deps, userID: userID, avatarID: avatarID, uploads)
        outcome.rejected += rejected
        return outcome
    }

    /// Each refused image with its position, the reason in words and the error code a single
    /// upload of it would have answered (the Mini App words it by the code).
    static func rejectedJSON(_ rejected: [References.Rejection]) -> JSON {
        .array(rejected.sorted { $0.index < $1.index }.map {
            ["index": .int($0.index), "reason": .string($0.reason), "code": .string(code($0.kind))]
        })
    }

    static func code(_ kind: References.Refusal) -> String {
        switch kind {
        case .unsupportedType: return "UNSUPPORTED_MEDIA_TYPE"
        case .tooLarge: return "PAYLOAD_TOO_LARGE"
        case .limitReached: return "LIMIT_REACHED"
        case .malformed: return "VALIDATION_ERROR"
        }
    }

    static func listReferences(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let refs = try References.list(ctx.db(), userID: user.id, avatarID: try avatarID(ctx))
        return .json(["references": .array(refs.map { reference($0, ctx) })])
    }

    static func deleteReference(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        try References.delete(ctx.deps, userID: user.id, avatarID: try avatarID(ctx), referenceID: try ctx.pathInt("refId"))
        return Response(status: 204)
    }

    static func answer(_ o: References.Outcome, _ ctx: Context) -> Response {
        .json(["uploaded": .array(o.uploaded.map {
                   ["id": .int($0.record.id), "url": .string(link($0.record.storageKey, ctx)), "duplicate": .bool($0.duplicate)]
               }),
               "rejected": rejectedJSON(o.rejected)],
              status: o.uploaded.isEmpty && !o.rejected.isEmpty ? 400 : 201)
    }

    static func avatarID(_ ctx: Context) throws -> Int {
        do { return try ctx.pathInt("id") } catch { throw AvatarError.notFound }
    }

    /// `data:image/png;base64,AAAA` → ("image/png", bytes).
    static func dataURL(_ s: String) -> (String, [UInt8])? {
        guard s.hasPrefix("data:"), let comma = s.firstIndex(of: ",") else { return nil }
        let meta = s[s.index(s.startIndex, offsetBy: 5)..<comma]
        guard meta.hasSuffix(";base64") else { return nil }
        let type = String(meta.dropLast(7)).lowercased()
        guard let bytes = Crypto.base64Decode(s[s.index(after: comma)...]) else { return nil }
        return (type, bytes)
    }

    static func link(_ key: String, _ ctx: Context) -> String {
        ctx.deps.media.signedURL(key: key, expiresIn: MediaLinks.apiTTL, now: ctx.now)
    }

    static func reference(_ r: ReferenceRecord, _ ctx: Context) -> JSON {
        ["id": .int(r.id), "url": .string(link(r.storageKey, ctx)), "createdAt": .string(r.createdAt)]
    }

    static func json(_ a: AvatarRecord) -> JSON {
        ["id": .int(a.id), "name": .string(a.name), "status": .string(a.status), "referenceCount": .int(a.referenceCount),
         "photoCount": .int(a.photoCount), "createdAt": .string(a.createdAt)]
    }
}
