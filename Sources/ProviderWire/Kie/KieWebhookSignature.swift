import LibCrypto

/// Kie's optional webhook HMAC (docs/providers.md#kie-callback): headers
/// `X-Webhook-Timestamp` (unix seconds) and `X-Webhook-Signature` =
/// `base64(HMAC-SHA256(taskId + "." + timestamp, KIE_WEBHOOK_HMAC_KEY))`, `taskId` from the
/// callback body. The simulator signs with it; the callback endpoint verifies with it, and
/// refuses timestamps outside `maxAge` either way (a replayed or a far-future callback).
///
/// ```swift
/// KieWebhookSignature.sign(taskID: "task_12345678", timestamp: "1698765432", key: "test-webhook-hmac-key")
/// // "/a4fi9mniPwp7AhX9fVZfDa9ctQTIBb3WW9+rqKeR9k="
/// ```
public enum KieWebhookSignature {
    public static let timestampHeader = "X-Webhook-Timestamp"
    public static let signatureHeader = "X-Webhook-Signature"
    /// How far a callback's timestamp may be from our clock (our choice; Kie states none).
    public static let defaultMaxAge: Double = 300

    public static func sign(taskID: String, timestamp: String, key: String) -> String {
        Crypto.base64(Crypto.hmacSHA256(key: Array(key.utf8), message: Array("\(taskID).\(timestamp)".utf8)))
    }

    /// True when the signature matches (constant-time) and the timestamp is within `maxAge`
    /// seconds of `now`.
    public static func verify(taskID: String, timestamp: String, signature: String, key: String, now: Double,
                              maxAge: Double = defaultMaxAge) -> Bool {
        guard let ts = Int(timestamp), abs(now - Double(ts)) <= maxAge else { return false }
        return Crypto.constantTimeEqual(Array(sign(taskID: taskID, timestamp: timestamp, key: key).utf8), Array(signature.utf8))
    }
}
