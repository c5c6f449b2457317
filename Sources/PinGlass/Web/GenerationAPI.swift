import HTTPCore

/// `POST /api/generate` and the job progress endpoints (contract: http-api.md).
enum GenerationAPI {
    static func start(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let body = try ctx.jsonBody()
        guard let avatarID = body["avatarId"]?.intValue ?? body["avatarId"]?.stringValue.flatMap({ Int($0) }), avatarID > 0 else {
            throw APIError.validation("avatarId is required (a positive integer)")
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
        // The client's photo count, if any, is ignored: the payment decides.
        let job = try GenerationStart(deps: ctx.deps).start(user: user, avatarID: avatarID, styleID: styleID, paymentBankID: paymentID)
        ctx.log.info("generation queued", metadata: ["job_id": "\(job.jobID)", "photos": "\(job.totalPhotos)"])
        return .json(["jobId": .int(job.jobID), "status": "queued", "totalPhotos": .int(job.totalPhotos)], status: 202)
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

    static func progress(_ ctx: Context, _ jobID: Int) throws -> Response {
        let user = try Authentication.user(ctx)
        return .json(json(try JobProgress.load(ctx.db(), userID: user.id, jobID: jobID), ctx))
    }

    static func json(_ j: JobProgress, _ ctx: Context) -> JSON {
        ["jobId": .int(j.jobID), "avatarId": .int(j.avatarID), "status": .string(j.status),
         "progress": ["completed": .int(j.completed), "failed": .int(j.failed), "total": .int(j.total), "percentage": .int(j.percentage)],
         "photos": .array(j.photos.map { ["id": .int($0.id), "url": .string(AvatarsAPI.link($0.storageKey, ctx))] }),
         "refund": j.refund.map { ["amount": .int($0.amount), "amountRub": Money(kopecks: $0.amount).roublesJSON, "status": .string($0.status)] } ?? .null,
         "createdAt": .string(j.createdAt), "updatedAt": .string(j.updatedAt)]
    }
}
