import FastCGI
import HTTPCore
import Postgres
import JSON
import PinGlassConfig
import Platform
import ProviderWire

/// The T-Bank part of the simulator: `/v2/Init`, `/v2/GetState`, `/v2/Confirm`, `/v2/Cancel`
/// with the bank's envelope, Token validation exactly like the bank (error 204), duplicate
/// OrderId refusal, Receipt sum check, partial refunds and `ExternalRequestId` idempotency;
/// signed notifications to NotificationURL, re-sent until the answer is exactly `200 OK`.
///
/// A payment is made by card (`Route` ACQ, `Source` cards) or by SBP (the customer's
/// `pay-sbp`: `Route` SBP, `Source` sbp; the values are this simulator's, the real ones are
/// not published where we looked: docs/providers.md#A2). For SBP, Cancel ignores `ExternalRequestId`
/// (docs/providers.md#tbank-cancel): every Cancel is a new refund.
struct Bank {
    let db: Connection
    let terminals: [TBankTerminal]
    let publicURL: String
    let http: HTTPClientAdapter

    func handle(method: String, body: [UInt8]) throws -> Response {
        guard let req = try? JSON.parse(body), case .object = req else { return fail("9999", "Неверный формат запроса") }
        try db.execute("INSERT INTO sim.requests (method, body) VALUES ($1, $2)", [method, req.serialized])
        guard let key = req["TerminalKey"]?.stringValue, let terminal = terminals.first(where: { $0.key == key }) else {
            return fail("202", "Терминал не найден")
        }
        guard TBankToken.verify(req, password: terminal.password) else {
            return fail("204", "Неверный токен. Проверьте пару TerminalKey/SecretKey")
        }
        switch method {
        case "Init": return try initPayment(req, terminal)
        case "GetState": return try getState(req, terminal)
        case "Confirm", "Cancel":
            let answer = try method == "Confirm" ? confirm(req, terminal) : cancel(req, terminal)
            _ = try deliverDue(force: false)          // the bank notifies about the operation
            return answer
        default: return fail("9999", "Метод не поддерживается")
        }
    }

    func fail(_ code: String, _ message: String, details: String? = nil) -> Response {
        var fields: [(String, JSON)] = [("Success", false), ("ErrorCode", .string(code)), ("Message", .string(message))]
        if let details { fields.append(("Details", .string(details))) }
        return .json(.object(fields))
    }

    func initPayment(_ req: JSON, _ terminal: TBankTerminal) throws -> Response {
        if let code = try Switches.value(db, "init_error") { return fail(code, "Simulated Init failure") }
        guard let amount = req["Amount"]?.intValue, amount > 0 else { return fail("104", "Неверная сумма") }
        guard let orderID = req["OrderId"]?.scalarText, !orderID.isEmpty, orderID.count <= 36 else {
            return fail("9999", "Не передан OrderId")
        }
        if let receipt = req["Receipt"] {
            let items = receipt["Items"]?.arrayValue ?? []
            let sum = items.compactMap { $0["Amount"]?.intValue }.reduce(0, +)
            guard !items.isEmpty, sum == amount else { return fail("308", "Сумма позиций чека не равна сумме платежа") }
            guard receipt["Email"] != nil || receipt["Phone"] != nil else { return fail("308", "В чеке нет Email или Phone") }
        }
        let id = try db.query("SELECT nextval('sim.payment_ids')::bigint AS id")[0].requiredInt("id")
        do {
            try db.execute("""
                INSERT INTO sim.payments (payment_id, terminal_key, order_id, amount, charged, status, description,
                                          notification_url, success_url, fail_url, receipt)
                VALUES ($1, $2, $3, $4, 0, 'NEW', $5, $6, $7, $8, $9::jsonb)
                """, [id, terminal.key, orderID, amount, req["Description"]?.stringValue, req["NotificationURL"]?.stringValue,
                      req["SuccessURL"]?.stringValue, req["FailURL"]?.stringValue, req["Receipt"]?.serialized])
        } catch PostgresError.uniqueViolation {
            return fail("8", "Неверный статус транзакции: заказ с таким OrderId уже существует")
        }
        return .json(["Success": true, "ErrorCode": "0", "TerminalKey": .string(terminal.key), "Status": "NEW",
                      "PaymentId": .string(String(id)), "OrderId": .string(orderID), "Amount": .int(amount),
                      "PaymentURL": .string("\(publicURL)/pay/\(id)")])
    }

    func paymentFor(_ db: some Queryable, _ req: JSON, _ terminal: TBankTerminal, lock: Bool = false) throws -> BankStore.Payment? {
        guard let id = req["PaymentId"]?.scalarText.flatMap({ Int($0) }),
              let p = try BankStore.payment(db, id, lock: lock), p.terminalKey == terminal.key else { return nil }
        return p
    }

    /// GetState. `Amount` is what the payment has charged now: after a refund or a
    /// reversal, what stays charged (assumption docs/providers.md#A1, which `BankState.amount`
    /// documents: the bank names the field without saying); before, the payment's amount. `Params` carry `Route` and
    /// `Source`, as the notifications' `DATA` do.
    func getState(_ req: JSON, _ terminal: TBankTerminal) throws -> Response {
        if let code = try Switches.value(db, "getstate_error") { return fail(code, "Simulated GetState failure") }
        let delay = try Switches.int(db, "getstate_delay_ms")
        if delay > 0 { System.sleep(seconds: Double(delay) / 1000) }     // a slow bank
        guard let p = try paymentFor(db, req, terminal) else { return fail("7", "Платеж не найден") }
        let (status, charged) = try lagging(p)
        let moneyBack = ["PARTIAL_REFUNDED", "REFUNDED", "PARTIAL_REVERSED", "REVERSED"].contains(status)
        let params: JSON = .array(routeData(p).map { ["Key": .string($0.0), "Value": .string($0.1)] })
        return .json(["Success": true, "ErrorCode": "0", "TerminalKey": .string(terminal.key), "Status": .string(status),
                      "PaymentId": .string(String(p.id)), "OrderId": .string(p.orderID),
                      "Amount": .int(moneyBack ? charged : p.amount), "Params": params])
    }

    /// The status and charged amount GetState reports. With the switch `getstate_lag_s` = N,
    /// a bank whose state lags behind its operations: for N seconds after a Cancel, GetState
    /// still answers what the payment was before it (clearing the switch ends the lag).
    func lagging(_ p: BankStore.Payment) throws -> (status: String, charged: Int) {
        let lag = try Switches.int(db, "getstate_lag_s")
        guard lag > 0, let before = try db.query("""
            SELECT original_amount, status FROM sim.refunds WHERE payment_id = $1 AND at > now() - make_interval(secs => $2)
            ORDER BY id LIMIT 1
            """, [p.id, lag], retry: .idempotent).first else { return (p.status, p.charged) }
        let charged = before.requiredInt("original_amount")
        let reversal = before.requiredString("status").contains("REVERSED")
        if charged == p.amount { return (reversal ? "AUTHORIZED" : "CONFIRMED", charged) }
        return (reversal ? "PARTIAL_REVERSED" : "PARTIAL_REFUNDED", charged)
    }

    /// How the payment was made, as `Route` and `Source` (GetState `Params`, notification `DATA`).
    func routeData(_ p: BankStore.Payment) -> [(String, String)] {
        p.isSBP ? [("Route", "SBP"), ("Source", "sbp")] : [("Route", "ACQ"), ("Source", "cards")]
    }

    func confirm(_ req: JSON, _ terminal: TBankTerminal) throws -> Response {
        try db.withTransaction { tx in
            guard let p = try paymentFor(tx, req, terminal, lock: true) else { return fail("7", "Платеж не найден") }
            guard p.status == "AUTHORIZED" else { return fail("9", "Неверный статус платежа") }
            try setStatus(tx, p, "CONFIRMED", charged: p.amount)
            try queueNotification(tx, p, status: "CONFIRMED", success: true, amount: p.amount)
            return .json(["Success": true, "ErrorCode": "0", "TerminalKey": .string(terminal.key), "Status": "CONFIRMED",
                          "PaymentId": .string(String(p.id)), "OrderId": .string(p.orderID)])
        }
    }

    /// Cancel, with the faults the tests inject (`/sim/control/switches`; each may be limited
    /// to N uses with `<name>_times`, see `Switches.take`):
    /// - `cancel_fail_status`: answer with this HTTP status (e.g. 503) and do nothing;
    /// - `cancel_error`: answer `Success: false` with this ErrorCode and do nothing;
    /// - `cancel_delay_ms`: do the Cancel, then answer this late (a client timeout);
    /// - `cancel_drop_answer`: do the Cancel, then lose the answer: `504`/`true` or `502`
    ///   (an empty gateway error), `garbage` (200 with an HTML body);
    /// - `getstate_lag_s` (read by GetState): GetState lags N seconds behind each Cancel.
    func cancel(_ req: JSON, _ terminal: TBankTerminal) throws -> Response {
        if let status = try Switches.take(db, "cancel_fail_status").flatMap({ Int($0) }) { return Response(status: status, body: []) }
        if let code = try Switches.take(db, "cancel_error") { return fail(code, "Simulated Cancel failure") }
        let response = try performCancel(req, terminal)
        if let delay = try Switches.take(db, "cancel_delay_ms").flatMap({ Int($0) }), delay > 0 {
            System.sleep(seconds: Double(delay) / 1000)
        }
        switch try Switches.take(db, "cancel_drop_answer") {
        case "502": return Response(status: 502, body: [])
        case "garbage": return Response(status: 200, contentType: "text/html", body: "<html>upstream error</html>")
        case "504", "true": return Response(status: 504, body: [])
        default: return response
        }
    }

    func performCancel(_ req: JSON, _ terminal: TBankTerminal) throws -> Response {
        let externalID = req["ExternalRequestId"]?.stringValue
        return try db.withTransaction { tx in
            guard let p = try paymentFor(tx, req, terminal, lock: true) else { return fail("7", "Платеж не найден") }
            // The key returns the first outcome, except for SBP, where every Cancel is new (docs/providers.md#tbank-cancel).
            if let externalID, !p.isSBP, let stored = try tx.query("""
                SELECT answer FROM sim.cancels WHERE terminal_key = $1 AND external_request_id = $2
                """, [terminal.key, externalID]).first {
                return .jsonBytes(Array(stored.requiredString("answer").utf8))   // same request: same outcome
            }
            let requested = req["Amount"]?.intValue
            let newStatus: String
            let original: Int
            let remaining: Int
            switch p.status {
            case "NEW", "FORM_SHOWED":
                (newStatus, original, remaining) = ("CANCELED", p.amount, 0)           // Amount is ignored for NEW
            case "AUTHORIZED":
                let amount = requested ?? p.amount
                guard amount > 0, amount <= p.amount else { return fail("104", "Неверная сумма") }
                (newStatus, original, remaining) = (amount == p.amount ? "REVERSED" : "PARTIAL_REVERSED", p.amount, p.amount - amount)
            case "CONFIRMED", "PARTIAL_REFUNDED":
                let amount = requested ?? p.charged
                guard amount > 0, amount <= p.charged else { return fail("104", "Сумма возврата больше суммы платежа") }
                if let receipt = req["Receipt"] {
                    let sum = receipt["Items"]?.arrayValue?.compactMap { $0["Amount"]?.intValue }.reduce(0, +) ?? -1
                    guard sum == amount else { return fail("308", "Сумма позиций чека не равна сумме возврата") }
                    guard receipt["Email"] != nil || receipt["Phone"] != nil else { return fail("308", "В чеке нет Email или Phone") }
                }
                (newStatus, original, remaining) = (amount == p.charged ? "REFUNDED" : "PARTIAL_REFUNDED", p.charged, p.charged - amount)
            default:
                return fail("9", "Неверный статус платежа \(p.status)")
            }
            try setStatus(tx, p, newStatus, charged: remaining)
            try queueNotification(tx, p, status: newStatus, success: true, amount: remaining)
            try tx.execute("""
                INSERT INTO sim.refunds (payment_id, external_request_id, amount, status, original_amount, new_amount)
                VALUES ($1, $2, $3, $4, $5, $6)
                """, [p.id, externalID, original - remaining, newStatus, original, remaining])
            var fields: [(String, JSON)] = [("Success", true), ("ErrorCode", "0"), ("TerminalKey", .string(terminal.key)),
                                            ("Status", .string(newStatus)), ("OriginalAmount", .int(original)),
                                            ("NewAmount", .int(remaining)), ("PaymentId", .string(String(p.id))),
                                            ("OrderId", .string(p.orderID))]
            if let externalID {
                fields.append(("ExternalRequestId", .string(externalID)))
                try tx.execute("""
                    INSERT INTO sim.cancels (terminal_key, external_request_id, payment_id, answer) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (terminal_key, external_request_id) DO NOTHING
                    """, [terminal.key, externalID, p.id, JSON.object(fields).serialized])
            }
            return .json(.object(fields))
        }
    }

    func setStatus(_ tx: Transaction, _ p: BankStore.Payment, _ status: String, charged: Int) throws {
        try tx.execute("UPDATE sim.payments SET status = $2, charged = $3 WHERE payment_id = $1", [p.id, status, charged])
    }

    /// A customer action on the payment page (or the control API): pay (by card), pay-sbp,
    /// decline, 3ds-fail.
    func customer(_ p: BankStore.Payment, action: String) throws -> String? {
        try db.withTransaction { tx in
            guard var current = try BankStore.payment(tx, p.id, lock: true), ["NEW", "FORM_SHOWED"].contains(current.status) else {
                return nil
            }
            switch action {
            case "pay", "pay-sbp":
                if action == "pay-sbp" {
                    try tx.execute("UPDATE sim.payments SET route = 'SBP' WHERE payment_id = $1", [current.id])
                    current = try BankStore.payment(tx, current.id) ?? current
                }
                try setStatus(tx, current, "CONFIRMED", charged: current.amount)
                var statuses = ["AUTHORIZED", "CONFIRMED"]
                if try Switches.isOn(tx, "notify_out_of_order") { statuses.reverse() }
                for s in statuses { try queueNotification(tx, current, status: s, success: true, amount: current.amount) }
                return current.successURL
            case "decline":
                try setStatus(tx, current, "REJECTED", charged: 0)
                try queueNotification(tx, current, status: "REJECTED", success: false, amount: current.amount, errorCode: "1051")
                return current.failURL
            case "3ds-fail":
                try setStatus(tx, current, "AUTH_FAIL", charged: 0)
                try queueNotification(tx, current, status: "AUTH_FAIL", success: false, amount: current.amount, errorCode: "1013")
                return current.failURL
            default:
                return nil
            }
        }
    }

    /// Queues a signed notification (and the duplicates the tests ask for).
    func queueNotification(_ tx: Transaction, _ p: BankStore.Payment, status: String, success: Bool, amount: Int,
                           errorCode: String = "0", extra: [(String, JSON)] = []) throws {
        guard let url = p.notificationURL, let terminal = terminals.first(where: { $0.key == p.terminalKey }) else { return }
        let body = try notificationBody(tx, terminal: terminal, fields: [
            ("TerminalKey", .string(terminal.key)), ("OrderId", .string(p.orderID)), ("Success", .bool(success)),
            ("Status", .string(status)), ("PaymentId", .number(String(p.id))), ("ErrorCode", .string(errorCode)),
            ("Amount", .int(amount)), ("CardId", .number("10452089")), ("Pan", "430000******0777"), ("ExpDate", "1230"),
        ] + extra + [("DATA", .object(routeData(p).map { ($0.0, .string($0.1)) }))])
        let copies = 1 + (try Switches.int(tx, "notify_duplicates"))
        for _ in 0..<copies {
            try tx.execute("INSERT INTO sim.notifications (payment_id, url, body) VALUES ($1, $2, $3)", [p.id, url, body])
        }
    }

    func notificationBody(_ tx: Transaction, terminal: TBankTerminal, fields: [(String, JSON)]) throws -> String {
        let password = try Switches.isOn(tx, "notify_bad_token") ? "not-the-password" : terminal.password
        return TBankToken.signed(.object(fields), password: password).serialized
    }

    /// Sends due notifications; a delivery counts only when the answer is `200` with body
    /// exactly `OK`. Failures are retried with a compressed schedule (1 s, 2 s, 4 s … 30 s).
    func deliverDue(force: Bool) throws -> (delivered: Int, failed: Int) {
        if try Switches.isOn(db, "notify_hold") && !force { return (0, 0) }
        let due = try db.query("""
            UPDATE sim.notifications SET attempts = attempts + 1,
                   next_at = now() + make_interval(secs => least(30, power(2, attempts)))
            WHERE id IN (SELECT id FROM sim.notifications WHERE delivered_at IS NULL AND (next_at <= now() OR $1)
                         ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
            RETURNING id, url, body
            """, [force]).map { ($0.requiredInt("id"), $0.requiredString("url"), $0.requiredString("body")) }
        var delivered = 0, failed = 0
        for (id, url, body) in due {
            let (status, answer) = http.post(url, body: body)
            let ok = status == 200 && answer == "OK"
            try db.execute("""
                UPDATE sim.notifications SET last_status = $2, last_body = left($3, 200),
                       delivered_at = CASE WHEN $4 THEN now() END
                WHERE id = $1
                """, [id, status, answer, ok], retry: .idempotent)
            if ok { delivered += 1 } else { failed += 1 }
        }
        return (delivered, failed)
    }
}
