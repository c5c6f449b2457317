import HTTPCore
import PinGlass
import ProviderWire

/// `POST /api/kie/callback`: Kie's `callBackUrl`, translated to and from `KieCallback`
/// (the domain decides what the callback may change and records it). The signature headers
/// must verify with `KIE_WEBHOOK_HMAC_KEY`; otherwise 401. Without that key the endpoint does
/// not exist: 404 as for any unknown path, before the body is read and with nothing logged
/// or stored (an unsigned hint anyone could send is worth nothing, and the dispatcher then
/// hands Kie no callback URL). Unknown task ids are answered 200 like known ones.
///
/// ```
/// POST /api/kie/callback  {"code":200,"data":{"taskId":"task_123","state":"success",…}}
/// → 200 {"received":true}
/// ```
enum KieCallbackRoutes {
    static func callback(_ ctx: Context) throws -> Response {
        guard let key = ctx.config.kieWebhookHMACKey else {
            throw APIError.notFound("no such endpoint: \(ctx.request.method) \(ctx.request.path)")
        }
        let body = try ctx.jsonBody()
        let signature = KieCallback.Signature(timestamp: ctx.request.header(KieWebhookSignature.timestampHeader),
                                              value: ctx.request.header(KieWebhookSignature.signatureHeader))
        let source = KieCallback.Source(remoteAddress: ctx.request.remoteAddress, requestID: ctx.request.requestID)
        do {
            _ = try KieCallback.receive(ctx.db(), body: body, signature: signature, key: key, now: ctx.now, source: source)
        } catch KieCallback.Refusal.noTaskID {
            throw APIError.validation("taskId is required (data.taskId)")
        } catch KieCallback.Refusal.badSignature {
            throw APIError.unauthorized("invalid or stale webhook signature")
        }
        return .json(["received": true])
    }
}
