import WebURL
import Postgres
import Platform
import ProviderWire

/// What a claimed row sends, and the call itself.
extension Deliverer {
    /// A stored photo of the row's job, verified to belong to the row.
    struct DeliveryPhoto: Equatable {
        let id: Int
        let storageKey: String
        let contentType: String
        let byteSize: Int
    }

    /// What one row sends.
    enum DeliveryContent: Equatable {
        /// An album (2–10) or a single photo, the caption on the first.
        case photos([DeliveryPhoto], caption: String)
        /// A text, with buttons under it (the final message's gallery button) or none.
        case text(String, keyboard: [[InlineButton]] = [])
    }

    /// A row that can never be sent as it stands (a malformed payload, photos that are not
    /// this row's): it fails without a call.
    struct DeliveryRefusal: Error {
        let reason: String
    }

    /// How a row's turn ended, for the rest of the round.
    enum Turn: Equatable {
        /// Recorded, or not ours any more: on to the next row.
        case next
        /// A 429 that was the bot's flood, not the chat's: the global budget is paused for
        /// its `retry_after`, so the round's other rows must not go out either.
        case floodPaused
        /// The bot token was refused: nothing can be sent by anyone; the row is back.
        case unauthorized
    }

    /// One row from intent to outcome.
    func deliver(_ row: ClaimedDelivery, slots: ArraySlice<Int>, _ db: Connection, _ pass: inout Pass,
                 _ report: inout Report) throws -> Turn {
        let content: DeliveryContent
        do {
            content = try load(db, row)
        } catch let refusal as DeliveryRefusal {
            try budget.release(db, slots)
            _ = try record(.permanent(refusal.reason, chatUnreachable: false), row, sentTo: row.chatID, db, &report)
            return .next
        }
        switch try send(content, row, slots: slots, db, &pass) {
        case .leaseLost(let calls):
            report.leaseLost += 1
            if calls == 0 { try budget.release(db, slots) }
            log.warning("a claimed delivery was taken back before a send; not sent from here",
                        metadata: Trace.job(db, row.jobID, ["delivery_id": "\(row.id)", "calls_made": "\(calls)"]))
            return .next
        case .answered(.sent(let ids), let chat, let heldUntil):
            Crashpoint.hit("deliver.after-send")
            // Telegram's answer is a fact now: a database outage delays its record, never drops
            // it (the batch would be sent again once the lease ran out).
            return try KnownOutcome(clock: deps.clock).record(heldUntil: heldUntil, what: "delivery \(row.id) sent", log: log) {
                try record(.sent(ids), row, sentTo: chat, db, &report)
            }
        case .answered(.unauthorized(let why), _, _):
            try stopForToken(row, why, db, &report)
            return .unauthorized
        case .answered(let verdict, let chat, let heldUntil):
            return try KnownOutcome(clock: deps.clock).record(heldUntil: heldUntil, what: "delivery \(row.id): \(verdict)", log: log) {
                try record(verdict, row, sentTo: chat, db, &report)
            }
        }
    }

    // MARK: loading

    /// What the row sends, read fresh: photos only from the row's payload and only those of
    /// its own job that joined this very row (never another job's: the original re-sent old
    /// photos); the texts in the user's language.
    func load(_ db: Connection, _ row: ClaimedDelivery) throws -> DeliveryContent {
        switch row.kind {
        case "album", "photo":
            return try loadPhotos(db, row)
        case "message":
            let final = try finalMessage(db, row)
            return .text(final.text, keyboard: final.keyboard)
        case "alert":
            guard let text = row.payload["text"]?.stringValue, !text.isEmpty else { throw DeliveryRefusal(reason: "alert without text") }
            return .text(String(DeliveryTexts.alert(text).prefix(4000)))
        default:
            throw DeliveryRefusal(reason: "unknown delivery kind \(row.kind)")
        }
    }

    func loadPhotos(_ db: Connection, _ row: ClaimedDelivery) throws -> DeliveryContent {
        guard let jobID = row.jobID, let items = row.payload["photos"]?.arrayValue else {
            throw DeliveryRefusal(reason: "\(row.kind) without a job or photos")
        }
        let ids = items.compactMap { $0["id"]?.intValue }
        let allowed = row.kind == "photo" ? 1...1 : 2...DeliveryBatches.albumSize
        guard ids.count == items.count, allowed.contains(ids.count), Set(ids).count == ids.count else {
            throw DeliveryRefusal(reason: "\(row.kind) with \(items.count) photos (ids \(ids))")
        }
        let found = try db.query("""
            SELECT p.id, p.storage_key, p.content_type, p.byte_size FROM generated_photos p
            WHERE p.id = ANY($1::bigint[]) AND p.job_id = $2 AND p.delivery_id = $3
            """, [ids.map(String.init), jobID, row.id], retry: .idempotent).map {
            DeliveryPhoto(id: $0.requiredInt("id"), storageKey: $0.requiredString("storage_key"),
                          contentType: $0.requiredString("content_type"), byteSize: $0.requiredInt("byte_size"))
        }
        let byID = Dictionary(found.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let photos = ids.compactMap { byID[$0] }
        guard photos.count == ids.count else {
            let strangers = ids.filter { byID[$0] == nil }
            throw DeliveryRefusal(reason: "photos \(strangers) are not photos of job \(jobID) in this delivery; nothing sent")
        }
        // Positions among the job's photos: after those of its earlier batches.
        let info = try db.query("""
            SELECT (SELECT count(*) FROM generated_photos p JOIN telegram_deliveries e ON e.id = p.delivery_id
                    WHERE e.job_id = $1 AND e.batch_no < $2)::int AS before,
                   (SELECT u.language_code FROM generation_jobs j JOIN users u ON u.id = j.user_id WHERE j.id = $1) AS lang
            """, [jobID, row.batchNo], retry: .idempotent)[0]
        let first = info.requiredInt("before") + 1
        let caption = DeliveryTexts.caption(DeliveryLanguage(languageCode: info.string("lang")), photos: first...(first + photos.count - 1))
        return .photos(photos, caption: caption)
    }

    /// The final message: how the job ended (from the payload JobFinish wrote: photos made,
    /// photos the customer gets, the refund), how many of its photos reached the chat (its
    /// rows sent by now: a message waits for its job's earlier batches), and the button to
    /// the job's gallery in the Mini App.
    func finalMessage(_ db: Connection, _ row: ClaimedDelivery) throws -> (text: String, keyboard: [[InlineButton]]) {
        guard let jobID = row.jobID, let outcome = row.payload["outcome"]?.stringValue.flatMap(JobOutcome.init(rawValue:)),
              let made = row.payload["photoCount"]?.intValue, let total = row.payload["total"]?.intValue else {
            throw DeliveryRefusal(reason: "message without its job's outcome")
        }
        let info = try db.query("""
            SELECT (SELECT count(*) FROM generated_photos p JOIN telegram_deliveries e ON e.id = p.delivery_id
                    WHERE e.job_id = $1 AND e.state = 'sent')::int AS delivered,
                   (SELECT u.language_code FROM generation_jobs j JOIN users u ON u.id = j.user_id WHERE j.id = $1) AS lang
            """, [jobID], retry: .idempotent)[0]
        // Payloads written before photos could be withheld have no "released": all were sent.
        let released = row.payload["released"]?.intValue ?? made
        let final = DeliveryTexts.Final(outcome: outcome, made: made, total: total, released: released,
                                        delivered: info.requiredInt("delivered"),
                                        refundKopecks: row.payload["refundKopecks"]?.intValue ?? 0,
                                        galleryURL: deps.config.publicBaseURL.map { MiniApp.gallery($0, job: jobID) },
                                        simulatedTelegram: HTTPURL(deps.config.telegramAPIURL)?.isLoopback == true)
        let lang = DeliveryLanguage(languageCode: info.string("lang"))
        return (DeliveryTexts.final(lang, final), DeliveryTexts.finalKeyboard(lang, final))
    }

    // MARK: sending

    /// What `send` came to.
    enum SendResult {
        /// Telegram answered (the chat it went to: a migrated group's new id). `heldUntil`: the
        /// monotonic time until which the lease renewed right before that call is surely ours
        /// (0 when no call was made), so a database outage after Telegram's answer is waited
        /// out until then, never longer (`KnownOutcome`).
        case answered(Verdict, chat: Int64, heldUntil: Double)
        /// The row was not ours any more right before a call (`calls` made before that): no
        /// further call went out, nothing is to be recorded.
        case leaseLost(calls: Int)
    }

    /// Sends the content to the row's chat; no transaction is open. At most three calls: a
    /// refused photo link is repeated at once with the bytes, and a group that became a
    /// supergroup is followed once (the row and its chat's other waiting rows move to the
    /// new id, `moveChat`).
    ///
    /// A call must never outlive the lease, or another deliverer could send the same batch
    /// while it runs. So everything slow that is not the call itself (reading the photos
    /// from storage: up to ten GETs) happens BEFORE the lease is renewed, and the lease is
    /// renewed (compare-and-set on its token; a lost one stops here) right before EVERY
    /// call; the lease is longer than the worst case of one call (`Config.validate`).
    func send(_ content: DeliveryContent, _ row: ClaimedDelivery, slots: ArraySlice<Int>, _ db: Connection,
              _ pass: inout Pass) throws -> SendResult {
        var chat = row.chatID
        var followed = false
        var calls = 0
        var heldUntil = 0.0
        var prepared: (upload: Bool, message: OutgoingMessage)?
        while true {
            let upload = pass.preferUpload
            if prepared?.upload != upload {
                do {
                    prepared = (upload, try outgoing(content, upload: upload))
                } catch let error as MediaStoreError {
                    if case .notFound(let key) = error {
                        return .answered(.permanent("stored photo missing: \(key)", chatUnreachable: false), chat: chat,
                                         heldUntil: heldUntil)
                    }
                    return .answered(.transient("\(error)"), chat: chat, heldUntil: heldUntil)
                }
            }
            guard let message = prepared?.message else { preconditionFailure("prepared above") }
            // Intent: the lease and the chat's hold renewed, the budget slots stamped, right
            // before the call.
            let renewing = deps.clock.monotonic()
            guard try renew(db, row) else { return .leaseLost(calls: calls) }
            heldUntil = renewing + Double(config.leaseSeconds)
            try budget.stamp(db, slots)
            calls += 1
            switch message.send(telegram, chat: chat) {
            case .success(let ids):
                return .answered(.sent(ids), chat: chat, heldUntil: heldUntil)
            case .failure(.mediaURLRejected(let why)) where message.byLink:
                // Nothing was sent: the same attempt again with the bytes, and the rest of
                // the pass uploads.
                log.warning("Telegram could not fetch a photo link; uploading the bytes instead",
                            metadata: Trace.job(db, row.jobID, ["chat_id": "\(chat)", "delivery_id": "\(row.id)",
                                                                "reason": "\(HTTPURL.redactingURLs(in: why))"]))
                try Counters.increment(db, "telegram.media_url_rejected")
                pass.preferUpload = true
            case .failure(.migrated(let to)) where !followed && to != chat:
                followed = true
                try moveChat(db, row, from: chat, to: to)
                chat = to
            case .failure(let error):
                return .answered(Verdict(error), chat: chat, heldUntil: heldUntil)
            }
        }
    }

    /// One Telegram call, ready to go: nothing slow is left to do before it.
    enum OutgoingMessage {
        case text(String, keyboard: [[InlineButton]])
        case photos([TelegramMedia], caption: String)

        /// Some photo goes by link (Telegram may refuse to fetch it: then the bytes).
        var byLink: Bool {
            guard case .photos(let media, _) = self else { return false }
            return media.contains { if case .url = $0 { return true } else { return false } }
        }

        /// An album, one photo, or a text: the message ids, or how Telegram refused. Every
        /// error is an answer (the lease was renewed and the budget stamped before the call):
        /// one that is not Telegram's (a call refused inside a transaction) counts as
        /// Telegram unavailable.
        func send(_ telegram: any TelegramAPI, chat: Int64) -> Result<[Int], TelegramError> {
            do {
                switch self {
                case .text(let text, let keyboard):
                    return .success([try telegram.sendMessage(chatID: chat, text: text, html: false, keyboard: keyboard)])
                case .photos(let media, let caption) where media.count == 1:
                    return .success([try telegram.sendPhoto(chatID: chat, photo: media[0], caption: caption)])
                case .photos(let media, let caption):
                    return .success(try telegram.sendMediaGroup(chatID: chat, photos: media, caption: caption))
                }
            } catch {
                return .failure(error as? TelegramError ?? .transient("\(error)"))
            }
        }
    }

    /// The call for the content: photos by link when Telegram can fetch it (`publicLink`),
    /// else (or with `upload`) as the stored bytes, read here.
    func outgoing(_ content: DeliveryContent, upload: Bool) throws -> OutgoingMessage {
        switch content {
        case .text(let text, let keyboard):
            return .text(text, keyboard: keyboard)
        case .photos(let photos, let caption):
            return .photos(try photos.map { try media($0, upload: upload) }, caption: caption)
        }
    }

    /// How a photo reaches Telegram: its signed link when Telegram can fetch it, else the
    /// stored bytes.
    func media(_ photo: DeliveryPhoto, upload: Bool) throws -> TelegramMedia {
        if !upload, photo.byteSize <= DelivererDefaults.maxURLPhotoBytes, let link = publicLink(photo.storageKey) {
            return .url(link)
        }
        let bytes: [UInt8]
        do {
            bytes = try deps.media.get(key: photo.storageKey)
        } catch let e as MediaStoreError {
            throw e
        } catch {
            throw MediaStoreError.unavailable("\(error)")
        }
        return .upload(filename: "portrait-\(photo.id).\(ImageType.fileExtension(photo.contentType))",
                       contentType: photo.contentType, bytes: bytes)
    }

    /// The photo's signed link (valid `mediaLinkSeconds`) when Telegram's servers can reach
    /// it: https and not a loopback host (PUBLIC_MEDIA_URL for files served by nginx — by
    /// default PUBLIC_BASE_URL/media —, the S3 endpoint for presigned links). Local runs get
    /// nil: their photos are uploaded.
    func publicLink(_ key: String) -> String? {
        let link = deps.media.signedURL(key: key, expiresIn: config.mediaLinkSeconds, now: deps.clock())
        guard let url = HTTPURL(link), url.scheme == "https", !url.isLoopback else { return nil }
        return link
    }

    /// The group became a supergroup (`migrate_to_chat_id`): this row (guarded by its lease)
    /// and the chat's other waiting rows move to the new id, which is held like the old one.
    /// When it was the admin chat, every later alert would still go to the old id (and be
    /// followed again, one failed call each): the operator is told, in the log and in the
    /// new chat, to update ADMIN_TELEGRAM_CHAT_ID.
    func moveChat(_ db: Connection, _ row: ClaimedDelivery, from: Int64, to: Int64) throws {
        log.warning("Telegram chat migrated to a supergroup; following it",
                    metadata: ["from": "\(from)", "to": "\(to)", "delivery_id": "\(row.id)"])
        try db.withTransaction { tx in
            if from == deps.config.adminTelegramChatID {
                // Logged at error level too (every alert is).
                try Alerts.raise(tx, chatID: to, key: "admin-chat-migrated",
                                 text: "The admin chat became a supergroup, its id is now \(to): set ADMIN_TELEGRAM_CHAT_ID=\(to) "
                                     + "(it is \(from)) and restart the workers.")
            }
            try tx.execute("""
                UPDATE telegram_deliveries SET chat_id = $3
                WHERE chat_id = $1 AND (state = 'pending' OR (\(LeasedQueue.deliveries.held(id: "$2", token: "$4::uuid"))))
                """, [from, row.id, to, row.lease])
            try tx.execute("""
                INSERT INTO telegram_chat_pacing AS p (chat_id, next_send_at) VALUES ($1, now() + make_interval(secs => $2))
                ON CONFLICT (chat_id) DO UPDATE SET next_send_at = greatest(p.next_send_at, EXCLUDED.next_send_at)
                """, [to, config.leaseSeconds])
        }
    }
}
