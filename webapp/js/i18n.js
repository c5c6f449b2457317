// Every word the page shows, in English and Russian (docs/webapp.md#strings). The language
// is the Telegram user's language_code: ru* is Russian, anything else English. A string
// with a count is an object of plural forms ({one, few, many, other}) picked by `n`.

const en = {
  loading: 'Loading…', back: 'Back', close: 'Close', retry: 'Try again', cancel: 'Cancel', skip: 'Skip to content',
  'outside.title': 'Open PinGlass in Telegram',
  'outside.text': 'This page is a Telegram Mini App. Open it with the button in the PinGlass bot.',
  'home.title': 'Your portraits', 'home.hello': 'Hello, {name}!',
  'home.intro': 'Turn a few selfies into a set of studio-quality AI portraits.',
  'home.step1': 'Create an avatar and upload 3–20 selfies.',
  'home.step2': 'Choose a set and pay.',
  'home.step3': 'Your portraits appear here and in the chat.',
  'home.avatars': 'Avatars', 'home.jobs': 'Generations', 'home.payment': 'Latest payment',
  'home.privacy': 'Privacy and my data', 'home.firstStep': 'Create your first avatar',
  'home.paidReady': 'Paid and ready: open an avatar and start the generation.',
  'home.payPending': 'This payment is not finished yet.',
  'avatar.new': 'New avatar', 'avatar.defaultName': 'Avatar {n}',
  'avatar.selfies': { one: '{n} selfie', other: '{n} selfies' },
  'avatar.status.draft': 'Needs selfies', 'avatar.status.ready': 'Ready', 'avatar.status.processing': 'Generating',
  'avatar.hint': 'Upload 3 to 20 clear selfies: different angles and light, just your face, no sunglasses.',
  'avatar.count': '{n} of 20 selfies', 'avatar.needMore': { one: 'Add at least {n} more.', other: 'Add at least {n} more.' },
  'avatar.add': 'Add selfies', 'avatar.selfieAlt': 'Selfie {n}', 'avatar.deleteSelfie': 'Delete selfie {n}', 'avatar.deleteShort': 'Delete',
  'avatar.delete': 'Delete avatar', 'avatar.deleteConfirm': 'Delete this avatar with its selfies and portraits? This cannot be undone.',
  'avatar.deleteYes': 'Yes, delete it', 'avatar.deleted': 'Avatar deleted.',
  'avatar.rename': 'Rename avatar', 'avatar.name': 'Avatar name', 'avatar.renameSave': 'Save',
  'avatar.nameEmpty': 'Enter a name.', 'avatar.renamed': 'Name saved.',
  'avatar.continue': 'Choose a set', 'avatar.generate': 'Start with my paid set', 'avatar.latestJob': 'Latest generation',
  'upload.list': 'Uploads', 'upload.preparing': 'Preparing…', 'upload.sending': 'Uploading…', 'upload.done': 'Uploaded',
  'upload.duplicate': 'Already uploaded: this photo is there once.', 'upload.network': 'No connection: the upload stopped.',
  'upload.retry': 'Retry {name}', 'upload.progress': 'Upload of {name}', 'upload.dismiss': 'Remove {name} from the list',
  'privacy.title': 'Your photos and privacy',
  'privacy.what': 'What we keep: the selfies you upload, the portraits made from them, and your e-mail for the fiscal receipt.',
  'privacy.use': 'Your selfies are used only to make your portraits and are never shown to anyone else.',
  'privacy.howLong': 'How long: selfies and portraits are removed {days} after a generation finishes, or sooner when you delete them.',
  'privacy.howDelete': 'How to delete: once you have photos here, “Delete my photos and data” on this screen removes your avatars, selfies and portraits at once, and forgets your e-mail. Payment records stay, as the law requires.',
  'privacy.consentAsk': 'To make portraits we need your consent to process your selfies.',
  'privacy.consentGiven': 'You agreed on {date}.',
  'consent.accept': 'I agree, continue',
  'privacy.delete': 'Delete my photos and data', 'privacy.deleteTitle': 'Delete your data', 'privacy.confirm': 'This removes all your avatars, selfies and portraits. It cannot be undone.',
  'privacy.confirmYes': 'Yes, delete everything', 'privacy.keep': 'Keep my data',
  'privacy.deleted': 'Deleted: {avatars} avatars, {references} selfies, {photos} portraits.',
  days: { one: '{n} day', other: '{n} days' },
  portraits: { one: '{n} portrait', other: '{n} portraits' },
  'plan.title': 'Choose a set', 'plan.styles': 'Style',
  'plan.choose': 'Choose a set to pay', 'plan.chooseFirst': 'Choose a set first.',
  'plan.needAvatar': 'Add at least 3 selfies to an avatar first, then start here.',
  'plan.email': 'E-mail for the receipt', 'plan.emailHint': 'The bank sends the fiscal receipt here; we remember it for next time.',
  'plan.emailInvalid': 'Enter an e-mail like name@example.com.',
  'plan.paidTitle': 'Your set is paid', 'pay': 'Pay {amount}',
  'pay.opened': 'The bank’s page opened outside the app. Pay there, then come back: this screen follows the payment.',
  'pay.blocked': 'Your browser blocked the new window. Open the bank’s page with the link below.',
  'pay.badLink': 'The bank sent an address that is not a web page, so nothing was opened. No money was taken; try again in a minute.',
  'pay.openAgain': 'Open the payment page', 'pay.waiting': 'Waiting for the bank…',
  'pay.stillWaiting': 'No answer from the bank yet. If you have paid, check again in a minute.',
  'pay.checkAgain': 'Check again', 'pay.paid': 'Paid. Choose a style and start.', 'pay.next': 'Choose a style and start.',
  'pay.failed': 'The payment did not go through. No money was taken; you can try again.',
  'pay.consumed': 'This payment has been used for a generation already.',
  'pay.writeAccess': 'Allow the bot to message you: your portraits are also sent to the chat.',
  'pay.testMode': 'Test payment: no real money moves.',
  generate: 'Generate portraits',
  'payment.new': 'Created', 'payment.pending': 'Waiting for payment', 'payment.authorized': 'Being confirmed',
  'payment.succeeded': 'Paid', 'payment.rejected': 'Declined by the bank', 'payment.canceled': 'Canceled',
  'payment.expired': 'Expired', 'payment.init_failed': 'The bank did not answer', 'payment.partially_refunded': 'Partly refunded',
  'payment.refunded': 'Refunded', 'payment.no_payment': 'No payment yet', 'payment.used': 'used for a generation',
  'job.title': 'Generation #{n}', 'job.titleDate': 'Generation of {date}', 'job.titleBare': 'Generation',
  'job.queued': 'Queued', 'job.processing': 'In progress', 'job.completed': 'Ready', 'job.partial': 'Partly ready',
  'job.failed': 'Failed', 'job.canceled': 'Canceled',
  'job.running': '{made} of {total} ready', 'job.runningFailed': '{made} of {total} ready, {failed} failed',
  'job.allReady': { one: 'Your portrait is ready', other: 'All {n} portraits are ready' },
  'job.someReady': '{made} of {total} portraits are ready', 'job.photosRemoved': 'Photos removed',
  'job.progressLabel': 'Progress of the generation',
  'job.wait': 'This takes a few minutes. You may close the app: the portraits also arrive in the chat.',
  'job.partialText': { one: 'The other one could not be made.', other: 'The other {n} could not be made.' },
  'job.failedText': 'The generation failed: no portraits could be made.',
  'job.withheldText': 'Only {made} of {total} portraits came out: too few for a set, so none are delivered.',
  'job.canceledText': 'The generation was canceled.',
  'job.checkPaused': 'This screen stopped checking by itself. The portraits also arrive in the chat; check again here any time.',
  'job.keptUntil': 'The portraits are kept until {date}; download the ones you like.',
  'job.removed': 'These portraits have been removed: deleted by you, or past their keeping time.',
  'refund.done': '{amount} was returned to your card{when}.', 'refund.when.done': ' on {date}',
  'refund.pending': '{amount} is on its way back to your card{when}; banks show it within a few days.', 'refund.when.pending': ' (since {date})',
  'refund.failed': 'The return of {amount} to your card needs our attention{when}; we will see it through.', 'refund.when.failed': ' (since {date})',
  'job.gallery': 'Portraits', 'job.photo': 'Portrait {n} of {total}', 'job.home': 'Home',
  'viewer.title': 'Portrait viewer', 'viewer.prev': 'Previous portrait', 'viewer.next': 'Next portrait',
  'viewer.download': 'Download', 'viewer.share': 'Share', 'viewer.copied': 'Link copied.',
  'err.NETWORK': 'No connection. Check the network and try again.',
  'err.UNAUTHORIZED': 'The session has expired: close the app and open it again from Telegram.',
  'err.PAYMENT_REQUIRED': 'Pay for a set first: this generation has no paid set to use.',
  'err.PAYMENT_CONSUMED': 'This payment has already been used for a generation. Pay for a new set.',
  'err.generate.429': 'A generation started less than a minute ago, or three are running. Try again in {s} s.',
  'err.generate.409': 'A generation of this avatar is running; wait until it finishes.',
  'err.RATE_LIMIT_EXCEEDED': 'Too many attempts. Try again in {s} s.',
  'err.avatar.LIMIT_REACHED': 'You have 3 avatars, the most allowed: delete one first.',
  'err.LIMIT_REACHED': 'An avatar holds 20 selfies at most.',
  'err.CONFLICT': 'A generation is running; try again when it finishes.',
  'err.UNSUPPORTED_MEDIA_TYPE': 'Not a photo we can use: send a JPEG, PNG or WebP picture.',
  'err.PAYLOAD_TOO_LARGE': 'Too large: a photo may be 10 MB at most.',
  'err.NO_REFERENCE_IMAGES': 'Upload selfies first.',
  'err.PAYMENT_FAILED': 'The bank did not answer. No money was taken; try again.',
  'err.SERVICE_UNAVAILABLE': 'The service is busy. Try again in a moment.',
  'err.NOT_FOUND': 'Not found: it may have been deleted.', 'err.AVATAR_NOT_FOUND': 'This avatar no longer exists.',
  'err.VALIDATION_ERROR': 'Please check what you entered.',
  'err.other': 'Something went wrong ({code}). Try again.',
};

const ru = {
  loading: 'Загрузка…', back: 'Назад', close: 'Закрыть', retry: 'Повторить', cancel: 'Отмена', skip: 'К содержимому',
  'outside.title': 'Откройте PinGlass в Telegram',
  'outside.text': 'Это мини-приложение Telegram. Откройте его кнопкой в боте PinGlass.',
  'home.title': 'Ваши портреты', 'home.hello': 'Здравствуйте, {name}!',
  'home.intro': 'Несколько селфи превратятся в набор AI-портретов студийного качества.',
  'home.step1': 'Создайте аватар и загрузите 3–20 селфи.',
  'home.step2': 'Выберите набор и оплатите.',
  'home.step3': 'Портреты появятся здесь и в чате.',
  'home.avatars': 'Аватары', 'home.jobs': 'Генерации', 'home.payment': 'Последний платёж',
  'home.privacy': 'Конфиденциальность и мои данные', 'home.firstStep': 'Создать первый аватар',
  'home.paidReady': 'Оплачено: откройте аватар и запустите генерацию.',
  'home.payPending': 'Этот платёж ещё не завершён.',
  'avatar.new': 'Новый аватар', 'avatar.defaultName': 'Аватар {n}',
  'avatar.selfies': { one: '{n} селфи', other: '{n} селфи' },
  'avatar.status.draft': 'Нужны селфи', 'avatar.status.ready': 'Готов', 'avatar.status.processing': 'Идёт генерация',
  'avatar.hint': 'Загрузите от 3 до 20 чётких селфи: разные ракурсы и свет, только ваше лицо, без тёмных очков.',
  'avatar.count': '{n} из 20 селфи', 'avatar.needMore': { one: 'Добавьте ещё хотя бы {n}.', other: 'Добавьте ещё хотя бы {n}.' },
  'avatar.add': 'Добавить селфи', 'avatar.selfieAlt': 'Селфи {n}', 'avatar.deleteSelfie': 'Удалить селфи {n}', 'avatar.deleteShort': 'Удалить',
  'avatar.delete': 'Удалить аватар', 'avatar.deleteConfirm': 'Удалить этот аватар вместе с селфи и портретами? Это нельзя отменить.',
  'avatar.deleteYes': 'Да, удалить', 'avatar.deleted': 'Аватар удалён.',
  'avatar.rename': 'Переименовать аватар', 'avatar.name': 'Название аватара', 'avatar.renameSave': 'Сохранить',
  'avatar.nameEmpty': 'Введите название.', 'avatar.renamed': 'Название сохранено.',
  'avatar.continue': 'Выбрать набор', 'avatar.generate': 'Запустить по оплаченному набору', 'avatar.latestJob': 'Последняя генерация',
  'upload.list': 'Загрузки', 'upload.preparing': 'Подготовка…', 'upload.sending': 'Загрузка…', 'upload.done': 'Загружено',
  'upload.duplicate': 'Уже загружено: это фото уже есть.', 'upload.network': 'Нет связи: загрузка прервалась.',
  'upload.retry': 'Повторить {name}', 'upload.progress': 'Загрузка {name}', 'upload.dismiss': 'Убрать {name} из списка',
  'privacy.title': 'Ваши фото и конфиденциальность',
  'privacy.what': 'Что мы храним: загруженные селфи, созданные по ним портреты и ваш e-mail для чека.',
  'privacy.use': 'Селфи используются только для ваших портретов и никому не показываются.',
  'privacy.howLong': 'Как долго: селфи и портреты удаляются через {days} после завершения генерации или раньше, когда вы их удалите.',
  'privacy.howDelete': 'Как удалить: когда у вас появятся фото, кнопка «Удалить мои фото и данные» на этом экране сразу удалит аватары, селфи и портреты и забудет e-mail. Записи о платежах остаются, как требует закон.',
  'privacy.consentAsk': 'Чтобы создать портреты, нам нужно ваше согласие на обработку селфи.',
  'privacy.consentGiven': 'Вы дали согласие {date}.',
  'consent.accept': 'Согласен, продолжить',
  'privacy.delete': 'Удалить мои фото и данные', 'privacy.deleteTitle': 'Удаление данных', 'privacy.confirm': 'Будут удалены все ваши аватары, селфи и портреты. Это нельзя отменить.',
  'privacy.confirmYes': 'Да, удалить всё', 'privacy.keep': 'Не удалять',
  'privacy.deleted': 'Удалено: аватаров — {avatars}, селфи — {references}, портретов — {photos}.',
  days: { one: '{n} день', few: '{n} дня', many: '{n} дней', other: '{n} дня' },
  portraits: { one: '{n} портрет', few: '{n} портрета', many: '{n} портретов', other: '{n} портрета' },
  'plan.title': 'Выберите набор', 'plan.styles': 'Стиль',
  // The catalogue's own words are English: the tiers and styles shipped with it, in Russian
  // (catalogueText falls back to the API's text for others).
  'tier.starter': 'Стартовый', 'tier.standard': 'Стандартный', 'tier.premium': 'Премиум',
  'style.pinglass.name': 'Фирменный PinGlass', 'style.pinglass.desc': 'Разные образы: повседневные, студийные и художественные портреты',
  'style.business.name': 'Деловой', 'style.business.desc': 'Портреты в деловом стиле для профиля в соцсетях и на сайте компании',
  'plan.choose': 'Выберите набор для оплаты', 'plan.chooseFirst': 'Сначала выберите набор.',
  'plan.needAvatar': 'Сначала добавьте в аватар хотя бы 3 селфи, затем запускайте здесь.',
  'plan.email': 'E-mail для чека', 'plan.emailHint': 'Сюда банк пришлёт чек; мы запомним адрес.',
  'plan.emailInvalid': 'Введите e-mail вида name@example.com.',
  'plan.paidTitle': 'Набор оплачен', 'pay': 'Оплатить {amount}',
  'pay.opened': 'Страница банка открылась вне приложения. Оплатите там и возвращайтесь: этот экран следит за платежом.',
  'pay.blocked': 'Браузер не открыл новое окно. Откройте страницу банка по ссылке ниже.',
  'pay.badLink': 'Банк прислал адрес, который не является веб-страницей, поэтому ничего не открылось. Деньги не списаны; попробуйте через минуту.',
  'pay.openAgain': 'Открыть страницу оплаты', 'pay.waiting': 'Ждём ответа банка…',
  'pay.stillWaiting': 'Банк пока не ответил. Если вы оплатили, проверьте ещё раз через минуту.',
  'pay.checkAgain': 'Проверить ещё раз', 'pay.paid': 'Оплачено. Выберите стиль и запускайте.', 'pay.next': 'Выберите стиль и запускайте.',
  'pay.failed': 'Платёж не прошёл. Деньги не списаны; можно попробовать снова.',
  'pay.consumed': 'Этот платёж уже использован для генерации.',
  'pay.writeAccess': 'Разрешите боту писать вам: портреты также придут в чат.',
  'pay.testMode': 'Тестовый платёж: настоящие деньги не списываются.',
  generate: 'Создать портреты',
  'payment.new': 'Создан', 'payment.pending': 'Ожидает оплаты', 'payment.authorized': 'Подтверждается',
  'payment.succeeded': 'Оплачен', 'payment.rejected': 'Отклонён банком', 'payment.canceled': 'Отменён',
  'payment.expired': 'Истёк', 'payment.init_failed': 'Банк не ответил', 'payment.partially_refunded': 'Частично возвращён',
  'payment.refunded': 'Возвращён', 'payment.no_payment': 'Платежей пока нет', 'payment.used': 'использован для генерации',
  'job.title': 'Генерация №{n}', 'job.titleDate': 'Генерация от {date}', 'job.titleBare': 'Генерация',
  'job.queued': 'В очереди', 'job.processing': 'Идёт', 'job.completed': 'Готово', 'job.partial': 'Готово частично',
  'job.failed': 'Не удалась', 'job.canceled': 'Отменена',
  'job.running': 'Готово {made} из {total}', 'job.runningFailed': 'Готово {made} из {total}, не удалось {failed}',
  'job.allReady': { one: '{n} портрет готов', few: 'Все {n} портрета готовы', many: 'Все {n} портретов готовы', other: 'Все {n} портрета готовы' },
  'job.someReady': 'Готово портретов: {made} из {total}', 'job.photosRemoved': 'Фото удалены',
  'job.progressLabel': 'Ход генерации',
  'job.wait': 'Это займёт несколько минут. Приложение можно закрыть: портреты также придут в чат.',
  'job.partialText': { one: '{n} портрет не получился.', few: '{n} портрета не получились.', many: '{n} портретов не получились.', other: '{n} портрета не получились.' },
  'job.failedText': 'Генерация не удалась: ни одного портрета не получилось.',
  'job.withheldText': 'Получилось только {made} из {total} портретов: для набора слишком мало, поэтому мы их не отправляем.',
  'job.canceledText': 'Генерация отменена.',
  'job.checkPaused': 'Экран перестал проверять сам. Портреты также придут в чат; проверить здесь можно в любой момент.',
  'job.keptUntil': 'Портреты хранятся до {date}; скачайте те, что понравились.',
  'job.removed': 'Эти портреты удалены: вами или по истечении срока хранения.',
  'refund.done': '{amount} возвращено на вашу карту{when}.', 'refund.when.done': ' {date}',
  'refund.pending': '{amount} возвращается на вашу карту{when}; банк покажет возврат в течение нескольких дней.', 'refund.when.pending': ' (с {date})',
  'refund.failed': 'Возврат {amount} на вашу карту требует нашего внимания{when}; мы доведём его до конца.', 'refund.when.failed': ' (с {date})',
  'job.gallery': 'Портреты', 'job.photo': 'Портрет {n} из {total}', 'job.home': 'На главную',
  'viewer.title': 'Просмотр портрета', 'viewer.prev': 'Предыдущий портрет', 'viewer.next': 'Следующий портрет',
  'viewer.download': 'Скачать', 'viewer.share': 'Поделиться', 'viewer.copied': 'Ссылка скопирована.',
  'err.NETWORK': 'Нет связи. Проверьте сеть и попробуйте снова.',
  'err.UNAUTHORIZED': 'Сеанс истёк: закройте приложение и снова откройте его из Telegram.',
  'err.PAYMENT_REQUIRED': 'Сначала оплатите набор: для этой генерации нет оплаченного набора.',
  'err.PAYMENT_CONSUMED': 'Этот платёж уже использован для генерации. Оплатите новый набор.',
  'err.generate.429': 'Генерация запускалась меньше минуты назад или уже идут три. Повторите через {s} с.',
  'err.generate.409': 'Для этого аватара уже идёт генерация; дождитесь её окончания.',
  'err.RATE_LIMIT_EXCEEDED': 'Слишком много попыток. Повторите через {s} с.',
  'err.avatar.LIMIT_REACHED': 'У вас уже 3 аватара — это максимум. Сначала удалите один.',
  'err.LIMIT_REACHED': 'В аватаре может быть не больше 20 селфи.',
  'err.CONFLICT': 'Идёт генерация; повторите, когда она закончится.',
  'err.UNSUPPORTED_MEDIA_TYPE': 'Этот файл не подходит: нужна фотография JPEG, PNG или WebP.',
  'err.PAYLOAD_TOO_LARGE': 'Слишком большой файл: не больше 10 МБ.',
  'err.NO_REFERENCE_IMAGES': 'Сначала загрузите селфи.',
  'err.PAYMENT_FAILED': 'Банк не ответил. Деньги не списаны; попробуйте снова.',
  'err.SERVICE_UNAVAILABLE': 'Сервис занят. Попробуйте через минуту.',
  'err.NOT_FOUND': 'Не найдено: возможно, это уже удалено.', 'err.AVATAR_NOT_FOUND': 'Этого аватара больше нет.',
  'err.VALIDATION_ERROR': 'Проверьте введённые данные.',
  'err.other': 'Что-то пошло не так ({code}). Попробуйте снова.',
};

const dictionaries = { en, ru };
export let lang = 'en';

export function setLanguage(code) {
  lang = String(code || '').toLowerCase().startsWith('ru') ? 'ru' : 'en';
  document.documentElement.lang = lang;
}

/** t('pay', {amount: '499 ₽'}); a plural entry picks its form by params.n. */
export function t(key, params = {}) {
  let s = dictionaries[lang][key] ?? en[key] ?? key;
  if (typeof s === 'object') s = s[new Intl.PluralRules(lang).select(params.n ?? 0)] ?? s.other;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
}

/** Whether the current language has the key itself (no English fallback). */
export function has(key) { return key in dictionaries[lang]; }

/** A catalogue word (`tier.starter`, `style.business.desc`) in the current language, else the API's own text. */
export function catalogueText(key, apiText) { return has(key) ? t(key) : apiText; }

export function money(rub) {
  const n = Number(rub);
  return new Intl.NumberFormat(lang, { style: 'currency', currency: 'RUB', currencyDisplay: 'narrowSymbol',
    minimumFractionDigits: Number.isInteger(n) ? 0 : 2, maximumFractionDigits: 2 }).format(n);
}

export function date(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  // Russian adds " г." after the year; the sentences put their own full stop.
  return new Intl.DateTimeFormat(lang, { day: 'numeric', month: 'long', year: 'numeric' }).format(d).replace(/\s*г\.$/, '');
}

/** Words for an API error, by the context's own text first (`err.generate.429`), then its code. */
export function errorText(err, context) {
  const code = (err && err.code) || 'other';
  const s = (err && err.details && err.details.retryAfter) || 60;
  for (const key of [context && `err.${context}.${code}`, context && err && `err.${context}.${err.status}`, `err.${code}`]) {
    if (key && has(key)) return t(key, { s });
  }
  return t('err.other', { code: err && err.status ? `${err.status} ${code}` : code });
}
