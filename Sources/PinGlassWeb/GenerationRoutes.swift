import HTTPCore
import PinGlass
import JSON

/// `POST /api/generate` and the job progress endpoints (docs/http-api.md).
enum GenerationRoutes {
    /// Also takes the original client's form: `useStoredReferences`, inline
    /// `referenceImages` (data URLs, stored as the avatar's references with the checks of
    /// `POST /api/avatars/{id}/references`), its style ids (`Catalogue.originalStyleIDs`) and
    /// `telegramUserId`, which must be the signed user's own (never an identity by itself).
    static func start(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let body = try ctx.jsonBody()
        guard let avatarID = body["avatarId"]?.intValue ?? body["avatarId"]?.stringValue.flatMap({ Int($0) }), avatarID > 0 else {
            throw APIError.validation("avatarId is required (a positive integer)")
        }
        if let t = body["telegramUserId"], !t.isNull {
            guard let claimed = t.intValue ?? t.stringValue.flatMap({ Int($0) }) else {
                throw APIError.validation("telegramUserId must be a Telegram user id (an integer)")
            }
            guard Int64(claimed) == user.telegramID else {
                throw APIError.forbidden("telegramUserId is not the user the init data was signed for")
            }
        }
        let styleID = body["styleId"]?.stringValue ?? "pinglass"
        guard !styleID.isEmpty, styleID.count <= 32 else { throw APIError.validation("styleId must be a style id, e.g. \"pinglass\"") }
        var paymentID: String?
        if let p = body["paymentId"], !p.isNull {
            guard let s = p.stringValue ?? p.scalarText, !s.isEmpty, s.count <= 64 else {
                throw APIError.validation("paymentId must be the T-Bank payment id")
            }
            paymentID = s
        }
        let inline = try inlineReferences(ctx, body, userID: user.id, avatarID: avatarID)
        // The client's photo count, if any, is ignored: the payment decides.
        let job: StartedJob
        do {
            job = try GenerationStart(deps: ctx.deps).start(user: user, avatarID: avatarID, styleID: styleID, paymentBankID: paymentID,
                                                          requestID: ctx.requestID)
        } catch GenerationError.noReferenceImages where inline?.rejected.isEmpty == false {
            throw APIError(status: 400, code: "NO_REFERENCE_IMAGES", message: "none of the reference images could be used",
                           details: ["rejectedImages": AvatarsRoutes.rejectedJSON(inline!.rejected)])
        }
        ctx.log.info("generation queued", metadata: Trace.job(ctx.deps, job.jobID, ["job_id": "\(job.jobID)", "photos": "\(job.totalPhotos)"]))
        var fields: [(String, JSON)] = [("jobId", .int(job.jobID)), ("avatarId", .int(avatarID)), ("status", "queued"),
                                        ("totalPhotos", .int(job.totalPhotos))]
        if let inline {
            fields += [("referenceImagesUsed", .int(inline.uploaded.count)), ("referenceImagesRejected", .int(inline.rejected.count))]
        }
        // The original client reads `success` and `data`; ours reads the fields at the top.
        return .json(.object(fields + [("success", true), ("data", .object(fields))]), status: 202)
    }

    /// The original client's references: `referenceImages` (data URLs) stored as the avatar's
    /// own before the generation starts; nil when none were sent. `useStoredReferences:
    /// false` without images is refused, as the original refused it.
    static func inlineReferences(_ ctx: Context, _ body: JSON, userID: Int, avatarID: Int) throws -> References.Outcome? {
        var useStored = true
        if let u = body["useStoredReferences"], !u.isNull {
            guard case .bool(let b) = u else { throw APIError.validation("useStoredReferences must be true or false") }
            useStored = b
        }
        guard let images = body["referenceImages"], !images.isNull else {
            if !useStored { throw APIError.validation("referenceImages is required unless useStoredReferences is true") }
            return nil
        }
        guard let items = images.arrayValue else { throw APIError.validation("referenceImages must be an array of data URLs") }
        if items.isEmpty {
            if !useStored { throw APIError.validation("referenceImages is required unless useStoredReferences is true") }
            return nil
        }
        return try AvatarsRoutes.storeDataURLs(ctx, items, userID: userID, avatarID: avatarID)
    }

    static func progressByQuery(_ ctx: Context) throws -> Response {
        guard let id = ctx.request.query["job_id"].flatMap({ Int($0) }), id > 0 else {
            throw APIError.validation("job_id is required (a positive integer)")
        }
        return try progress(ctx, id)
    }

    static func progressByPath(_ ctx: Context) throws -> Response {
        guard let id = Int(ctx.pathParams["id"] ?? ""), id > 0 else { throw GenerationError.jobNotFound }
        return try progress(ctx, id)
    }

    /// The user and the job in one statement: the Mini App polls this every second or two.
    static func progress(_ ctx: Context, _ jobID: Int) throws -> Response {
        let (_, rows) = try Authentication.read(ctx, JobProgress.sql(job: "$6", user: "me.id", retention: retention(ctx)), [jobID])
        guard let row = rows.first else { throw GenerationError.jobNotFound }
        return .json(json(try JobProgress.from(row), ctx))
    }

    /// `GET /api/jobs`: the caller's newest jobs, each without its photos but with their count.
    static func list(_ ctx: Context) throws -> Response {
        let (_, rows) = try Authentication.read(ctx, JobProgress.listSQL(user: "me.id", retention: retention(ctx)),
                                                orderBy: JobProgress.listOrder("x"))
        return .json(["jobs": .array(try rows.map { json(try JobProgress.from($0, listed: true), ctx) })])
    }

    static func retention(_ ctx: Context) -> MediaRetention { MediaRetention(days: ctx.config.mediaRetentionDays) }

    /// The job answer; without `photos` when they were not read (a list).
    static func json(_ j: JobProgress, _ ctx: Context) -> JSON {
        var fields: [(String, JSON)] = [
            ("jobId", .int(j.jobID)), ("avatarId", .int(j.avatarID)), ("status", .string(j.status)),
            ("progress", ["completed": .int(j.completed), "failed": .int(j.failed), "total": .int(j.total), "percentage": .int(j.percentage)]),
        ]
        if let photos = j.photos {
            fields.append(("photos", .array(photos.map { ["id": .int($0.id), "url": .string(AvatarsRoutes.link($0.storageKey, ctx))] })))
        }
        fields += [
            ("photoCount", .int(j.photoCount)),
            ("refund", j.refund.map {
                ["amount": .int($0.amount), "amountRub": Money(kopecks: $0.amount).roublesJSON, "status": .string($0.status),
                 "requestedAt": .string($0.requestedAt), "refundedAt": $0.refundedAt.map { .string($0) } ?? .null]
            } ?? .null),
            ("keptUntil", j.keptUntil.map { .string($0) } ?? .null),
            ("createdAt", .string(j.createdAt)), ("updatedAt", .string(j.updatedAt)),
        ]
        return .object(fields)
    }
}
