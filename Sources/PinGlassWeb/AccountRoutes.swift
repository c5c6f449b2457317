import HTTPCore
import PinGlass
import JSON

/// The caller's own account (docs/http-api.md#me): who they are, the receipt address, the
/// consent, and deleting their photos.
enum AccountRoutes {
    static func show(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        return .json(json(try Account.find(ctx.db(), userID: user.id), ctx))
    }

    /// `{"email"?: "a@b.c" | null, "consent"?: true}`: a field left out is left alone.
    static func update(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let body = try ctx.jsonBody()
        var email = Account.EmailChange.keep
        if let e = body["email"] {
            if e.isNull {
                email = .forget
            } else {
                guard let s = e.stringValue else { throw ReceiptEmail.Invalid() }
                email = .set(try ReceiptEmail.checked(s))
            }
        }
        var consent = false
        if let c = body["consent"] {
            guard case .bool(true) = c else { throw APIError.validation("consent can only be given: send \"consent\": true") }
            consent = true
        }
        return .json(json(try Account.update(ctx.db(), userID: user.id, email: email, consent: consent), ctx))
    }

    static func deleteData(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let counts = try DataDeletion.run(ctx.deps, userID: user.id, log: ctx.log)
        return .json(["deleted": ["avatars": .int(counts.avatars), "references": .int(counts.references), "photos": .int(counts.photos)]])
    }

    static func json(_ a: AccountRecord, _ ctx: Context) -> JSON {
        ["user": ["telegramId": .int(Int(a.telegramID)), "firstName": a.firstName.map { .string($0) } ?? .null,
                  "languageCode": a.languageCode.map { .string($0) } ?? .null, "email": a.email.map { .string($0) } ?? .null,
                  "consentAt": a.consentAt.map { .string($0) } ?? .null],
         "retentionDays": .int(ctx.config.mediaRetentionDays)]
    }
}
