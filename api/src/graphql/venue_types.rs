//! A venue as GraphQL shows it: enough for a booking widget to render its
//! whole form from one query (fields to ask for, what to pay and how,
//! opt-ins, notice languages, party sizes, how far ahead), and its settings
//! for those who edit them.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use domain::ports::VenueRepository;
use domain::{Resource, ResourceKind, Venue};

use super::consent_types::PrivacyNoticeObject;
use super::context::{blocking, store};
use super::enums::{OptInPurpose, PaymentGateway};
use super::scalars::LocalTime;

pub struct VenueObject(pub Venue);

impl VenueObject {
    /// The active resources, smallest first.
    async fn active_resources(&self, ctx: &Context<'_>) -> Result<Vec<Resource>> {
        let store = store(ctx).clone();
        let venue = self.0.id;
        let mut resources = blocking(move || store.resources(venue)).await?;
        resources.retain(|r| r.active);
        resources.sort_by(|a, b| {
            a.capacity
                .cmp(&b.capacity)
                .then_with(|| a.slug.cmp(&b.slug))
        });
        Ok(resources)
    }
}

#[Object(name = "Venue")]
impl VenueObject {
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Short name used in venue files and `venueBySlug`.
    async fn slug(&self) -> &str {
        self.0.slug.as_str()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// IANA time zone, e.g. `Europe/Amsterdam`.
    async fn time_zone(&self) -> &str {
        self.0.time_zone.name()
    }

    /// ISO 3166 code: how phone numbers without a country code are read,
    /// and the prefix a form can suggest.
    async fn country(&self) -> Option<String> {
        self.0.country.map(domain::Country::code)
    }

    /// Bookings start every this many minutes after an opening time.
    async fn slot_interval_minutes(&self) -> u32 {
        self.0.rules.slot_interval.get()
    }

    async fn booking_duration_minutes(&self) -> u32 {
        self.0.rules.booking_duration.get()
    }

    /// Time after each booking during which its resource stays blocked.
    async fn buffer_minutes(&self) -> u32 {
        self.0.rules.buffer.get()
    }

    /// Bookings close this long before their start.
    async fn min_notice_minutes(&self) -> u32 {
        self.0.rules.min_notice.get()
    }

    /// Local time after which same-day bookings close, if any.
    async fn same_day_cutoff(&self) -> Option<LocalTime> {
        self.0.rules.same_day_cutoff.map(LocalTime)
    }

    /// Guests may change or cancel until this long before the start.
    async fn cancel_deadline_minutes(&self) -> u32 {
        self.0.rules.cancel_deadline.get()
    }

    /// The venue's own limit on a party (a setting); `partySize` is what a
    /// form may offer.
    async fn max_party_size(&self) -> u32 {
        self.0.rules.max_party_size
    }

    /// How many days ahead bookings open.
    async fn max_advance_days(&self) -> u32 {
        self.0.rules.max_advance_days
    }

    /// The party sizes a booking may have: from 1 to the smaller of the
    /// venue's limit and what its largest resource seats (0 when it has no
    /// resources: nothing can be booked).
    async fn party_size(&self, ctx: &Context<'_>) -> Result<PartySizeRange> {
        let resources = self.active_resources(ctx).await?;
        let largest = resources
            .iter()
            .map(|r| r.capacity)
            .chain(
                self.0
                    .tables_together
                    .candidates(&resources)
                    .iter()
                    .map(|c| c.capacity),
            )
            .max()
            .unwrap_or(0);
        Ok(PartySizeRange {
            min: 1,
            max: largest.min(self.0.rules.max_party_size),
        })
    }

    /// What guests pay or secure when they book, and how long an unpaid
    /// booking holds its slot.
    async fn payment(&self) -> VenuePayment {
        use domain::payments::PaymentRule;
        let (amount, per_guest) = match self.0.payments.rule {
            PaymentRule::None => (None, false),
            PaymentRule::Deposit { amount, per_guest }
            | PaymentRule::Prepayment { amount, per_guest } => (Some(amount), per_guest),
            PaymentRule::Guarantee { fee, per_guest } => (Some(fee), per_guest),
        };
        VenuePayment {
            kind: store::PaymentKind::of(&self.0.payments.rule).into(),
            amount: amount.map(Into::into),
            per_guest,
            hold_minutes: self.0.payments.hold.get(),
        }
    }

    /// The gateways a guest may pay this venue with: configured on this
    /// server, enabled for the venue and able to do what its payment rule
    /// asks (only Stripe keeps a card for a guarantee). Empty when the
    /// venue takes no payment.
    async fn gateways(&self, ctx: &Context<'_>) -> Vec<PaymentGateway> {
        accepted_gateways(&self.0, ctx.data_opt::<plugins::Gateways>())
    }

    /// Which guest fields the booking form asks for.
    async fn guest_fields(&self) -> VenueGuestFields {
        let fields = self.0.guest_fields;
        VenueGuestFields {
            name: FieldRuleValue::Required,
            email: fields.email.into(),
            phone: fields.phone.into(),
            notes: fields.notes.into(),
        }
    }

    /// What the booking form offers guests to opt in to (unticked), besides
    /// the booking itself.
    async fn consent_purposes(&self) -> Vec<OptInPurpose> {
        self.0
            .opt_ins
            .purposes()
            .into_iter()
            .filter_map(|purpose| OptInPurpose::try_from(purpose).ok())
            .collect()
    }

    /// Locales (e.g. `en`, `nl-BE`) in which the venue has published a
    /// privacy notice: ask `privacyNotice` in one of them.
    /// The current privacy notice in a locale, to show in full while
    /// booking and to name in `createReservation(input: { noticeVersion })`;
    /// null while none is published in it (`noticeLocales` lists those
    /// that are). The same as the root `privacyNotice`, so that a widget
    /// asks for the whole form in one query.
    async fn privacy_notice(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = "en")] locale: String,
    ) -> Result<Option<PrivacyNoticeObject>> {
        use super::errors::OrGraphqlError as _;
        let locale = domain::privacy::Locale::parse(&locale).or_gql()?;
        let store = store(ctx).clone();
        let venue = self.0.id;
        blocking(move || {
            Ok(store
                .current_notice(venue, &locale)?
                .map(PrivacyNoticeObject::from))
        })
        .await
    }

    async fn notice_locales(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let store = store(ctx).clone();
        let venue = self.0.id;
        blocking(move || store.notice_locales(venue)).await
    }

    /// Web origins whose pages may call kluis from a browser for this
    /// venue (its widget's site), as browsers send them.
    async fn allowed_origins(&self) -> Vec<String> {
        self.0
            .allowed_origins
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect()
    }

    /// Days after a guest's last visit until their personal data is
    /// anonymized.
    async fn retention_days(&self) -> u32 {
        self.0.retention_days
    }

    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped.
    async fn payment_data_days(&self) -> u32 {
        self.0.payment_data_days
    }

    /// Minutes a waitlist offer of a freed table can be claimed.
    async fn waitlist_offer_minutes(&self) -> u32 {
        self.0.waitlist.offer_minutes
    }

    /// Days after its date until a waitlist entry is deleted with its
    /// personal data.
    async fn waitlist_retention_days(&self) -> u32 {
        self.0.waitlist.retention_days
    }

    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn opening_hours(&self) -> Vec<OpeningHours> {
        self.0
            .schedule
            .iter()
            .map(|(weekday, interval)| OpeningHours {
                weekday: weekday.into(),
                opens: LocalTime(interval.opens),
                closes: LocalTime(interval.closes),
            })
            .collect()
    }

    /// What the venue offers to book, in the venue's order. Empty: it books
    /// without services (its own duration, buffer and payment rule, any
    /// resource). Otherwise `availability` and `createReservation` need a
    /// `serviceId` from this list.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn services(&self) -> Vec<ServiceObject> {
        self.0
            .services
            .iter()
            .filter(|s| s.active)
            .map(|s| ServiceObject::new(s.clone(), &self.0))
            .collect()
    }

    /// Dated exceptions to the weekly hours of the venue and its resources,
    /// on the days `from` to `until` (both included; either left out: no
    /// bound), by date. On a date, a resource works its own exception,
    /// else none when the venue's exception closes the whole day, else its
    /// own weekly hours, else the venue's exception, else the venue's
    /// opening hours.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn exceptions(
        &self,
        ctx: &Context<'_>,
        from: Option<super::scalars::Date>,
        until: Option<super::scalars::Date>,
    ) -> Result<Vec<HoursExceptionObject>> {
        let mut listed: Vec<domain::HoursException> = self
            .0
            .exceptions
            .iter()
            .filter(|e| from.as_ref().is_none_or(|day| e.date >= day.0))
            .filter(|e| until.as_ref().is_none_or(|day| e.date <= day.0))
            .cloned()
            .collect();
        // The venue's own first on each date, so the order is stable.
        listed.sort_by_key(|e| (e.date, e.resource_id.is_some()));
        let resources = if listed.iter().any(|e| e.resource_id.is_some()) {
            let store = store(ctx).clone();
            let venue = self.0.id;
            blocking(move || store.resources(venue)).await?
        } else {
            Vec::new()
        };
        Ok(listed
            .into_iter()
            .map(|exception| HoursExceptionObject {
                resource: exception
                    .resource_id
                    .and_then(|id| resources.iter().find(|r| r.id == id).cloned()),
                exception,
            })
            .collect())
    }

    /// Periods in which the venue, or one of its resources, takes no
    /// bookings, overlapping the days `from` to `until` (both included, on
    /// the venue's calendar; either left out: no bound), in time order.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn closures(
        &self,
        ctx: &Context<'_>,
        from: Option<super::scalars::Date>,
        until: Option<super::scalars::Date>,
    ) -> Result<Vec<ClosureObject>> {
        let tz = self.0.time_zone;
        let from = from.map(|day| domain::venue::start_of_day(tz, day.0));
        let until = until
            .and_then(|day| day.0.succ_opt())
            .map(|day| domain::venue::start_of_day(tz, day));
        let store = store(ctx).clone();
        let venue = self.0.id;
        let (closures, resources) = blocking(move || {
            Ok((
                store.closures_between(venue, from, until)?,
                store.resources(venue)?,
            ))
        })
        .await?;
        Ok(closures
            .into_iter()
            .map(|closure| ClosureObject::new(closure, &self.0, &resources))
            .collect())
    }

    /// Resources that take bookings, smallest first.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn resources(&self, ctx: &Context<'_>) -> Result<Vec<ResourceObject>> {
        Ok(self
            .active_resources(ctx)
            .await?
            .into_iter()
            .map(ResourceObject)
            .collect())
    }
    /// Fixed combinations of tables that larger parties are given
    /// together, as the venue declared them.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn combinations(&self, ctx: &Context<'_>) -> Result<Vec<CombinationObject>> {
        let resources = self.all_resources(ctx).await?;
        Ok(self
            .0
            .tables_together
            .combinations
            .iter()
            .map(|c| CombinationObject {
                resources: members(&resources, &c.resources),
                capacity: c.capacity,
                min_party: c.min_party,
            })
            .collect())
    }

    /// Pairs of tables that stand next to each other: a connected run of
    /// up to `maxJoinedTables` of them may be joined for a larger party
    /// and seats what its tables seat together.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn adjacent_tables(&self, ctx: &Context<'_>) -> Result<Vec<Vec<ResourceObject>>> {
        let resources = self.all_resources(ctx).await?;
        Ok(self
            .0
            .tables_together
            .adjacent
            .iter()
            .map(|(a, b)| members(&resources, &[*a, *b]))
            .collect())
    }

    /// The most adjacent tables one booking joins.
    async fn max_joined_tables(&self) -> u32 {
        self.0.tables_together.max_joined
    }

    /// The most guests whose bookings may start in one slot; null: no cap.
    async fn max_covers_per_slot(&self) -> Option<u32> {
        self.0.pacing.max_covers_per_slot
    }

    /// The most guests whose bookings may start in one hour of the venue's
    /// clock (18:00 to 18:59); null: no cap.
    async fn max_covers_per_hour(&self) -> Option<u32> {
        self.0.pacing.max_covers_per_hour
    }
}

impl VenueObject {
    /// Every resource of the venue, retired ones included.
    async fn all_resources(&self, ctx: &Context<'_>) -> Result<Vec<Resource>> {
        let store = store(ctx).clone();
        let venue = self.0.id;
        blocking(move || store.resources(venue)).await
    }
}

/// These resources, in this order.
pub fn members(resources: &[Resource], ids: &[domain::ResourceId]) -> Vec<ResourceObject> {
    ids.iter()
        .filter_map(|id| resources.iter().find(|r| r.id == *id))
        .cloned()
        .map(ResourceObject)
        .collect()
}

/// Tables a venue gives one party together.
#[derive(SimpleObject)]
#[graphql(name = "Combination")]
pub struct CombinationObject {
    /// The tables, the primary one first.
    pub resources: Vec<ResourceObject>,
    /// What they seat together.
    pub capacity: u32,
    /// The smallest party given them; null: one more than the largest of
    /// them seats.
    pub min_party: Option<u32>,
}

/// The gateways `venue` accepts among those configured, in the order of
/// `PaymentGateway`.
pub fn accepted_gateways(
    venue: &Venue,
    configured: Option<&plugins::Gateways>,
) -> Vec<PaymentGateway> {
    use domain::payments::PaymentRule;
    let Some(configured) = configured else {
        return Vec::new();
    };
    let venue_id = venue.id.to_string();
    PaymentGateway::ALL
        .into_iter()
        .filter(|gateway| match venue.payments.rule {
            PaymentRule::None => false,
            PaymentRule::Guarantee { .. } => gateway.saves_cards(),
            PaymentRule::Deposit { .. } | PaymentRule::Prepayment { .. } => true,
        })
        .filter(|gateway| configured.for_venue(gateway.as_str(), &venue_id).is_ok())
        .collect()
}

/// The party sizes a booking may have.
#[derive(SimpleObject)]
pub struct PartySizeRange {
    pub min: u32,
    pub max: u32,
}

/// A venue's payment rule.
#[derive(SimpleObject)]
pub struct VenuePayment {
    pub kind: PaymentKind,
    /// Per booking, or per guest with `perGuest`; null for `NONE`.
    pub amount: Option<super::payments::MoneyValue>,
    pub per_guest: bool,
    /// How long an unpaid booking holds its slot.
    pub hold_minutes: u32,
}

/// Which guest fields a venue collects.
#[derive(SimpleObject)]
pub struct VenueGuestFields {
    /// Always `REQUIRED`.
    pub name: FieldRuleValue,
    pub email: FieldRuleValue,
    pub phone: FieldRuleValue,
    pub notes: FieldRuleValue,
}

#[derive(SimpleObject)]
pub struct OpeningHours {
    pub weekday: Weekday,
    pub opens: LocalTime,
    /// `24:00` is the midnight that ends the day.
    pub closes: LocalTime,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Self::Monday,
            chrono::Weekday::Tue => Self::Tuesday,
            chrono::Weekday::Wed => Self::Wednesday,
            chrono::Weekday::Thu => Self::Thursday,
            chrono::Weekday::Fri => Self::Friday,
            chrono::Weekday::Sat => Self::Saturday,
            chrono::Weekday::Sun => Self::Sunday,
        }
    }
}

pub struct ResourceObject(pub Resource);

#[Object(name = "Resource")]
impl ResourceObject {
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn slug(&self) -> &str {
        self.0.slug.as_str()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn kind(&self) -> ResourceKindValue {
        self.0.kind.into()
    }

    /// The largest party it takes.
    async fn capacity(&self) -> u32 {
        self.0.capacity
    }

    /// Weekly hours of its own, replacing the venue's opening hours for
    /// it; null when it follows the venue's.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn hours(&self) -> Option<Vec<OpeningHours>> {
        self.0.hours.as_ref().map(|week| {
            week.iter()
                .map(|(weekday, interval)| OpeningHours {
                    weekday: weekday.into(),
                    opens: LocalTime(interval.opens),
                    closes: LocalTime(interval.closes),
                })
                .collect()
        })
    }
}

/// One thing a venue offers to book.
pub struct ServiceObject {
    service: domain::Service,
    /// The venue's rule, which applies when the service has none.
    venue_rule: domain::payments::PaymentRule,
}

impl ServiceObject {
    pub fn new(service: domain::Service, venue: &Venue) -> Self {
        Self {
            service,
            venue_rule: venue.payments.rule,
        }
    }
}

#[Object(name = "Service")]
impl ServiceObject {
    pub async fn id(&self) -> ID {
        ID(self.service.id.to_string())
    }

    /// Short name used in venue files and `saveVenue`.
    async fn slug(&self) -> &str {
        self.service.slug.as_str()
    }

    async fn name(&self) -> &str {
        &self.service.name
    }

    /// How long a booking of it lasts.
    async fn duration_minutes(&self) -> u32 {
        self.service.duration.get()
    }

    /// How long its resource stays blocked afterwards.
    async fn buffer_minutes(&self) -> u32 {
        self.service.buffer.get()
    }

    /// The party sizes it takes.
    async fn party_size(&self) -> PartySizeRange {
        PartySizeRange {
            min: self.service.min_party,
            max: self.service.max_party,
        }
    }

    /// The resources that deliver it; empty: every resource of the venue.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn resources(&self, ctx: &Context<'_>) -> Result<Vec<ResourceObject>> {
        if self.service.resources.is_empty() {
            return Ok(Vec::new());
        }
        // The cached view: a widget listing every service asks once per
        // service.
        let store = store(ctx).clone();
        let venue = self.service.venue_id;
        let view = blocking(move || store.venue_view(venue)).await?;
        let resources = view.map(|view| view.resources.clone()).unwrap_or_default();
        Ok(self
            .service
            .resources
            .iter()
            .filter_map(|id| resources.iter().find(|r| r.id == *id).cloned())
            .map(ResourceObject)
            .collect())
    }

    /// What its bookings pay or secure: its own rule, else the venue's.
    async fn payment(&self) -> ServicePayment {
        use domain::payments::PaymentRule;
        let rule = self.service.payment.unwrap_or(self.venue_rule);
        let (amount, per_guest) = match rule {
            PaymentRule::None => (None, false),
            PaymentRule::Deposit { amount, per_guest }
            | PaymentRule::Prepayment { amount, per_guest } => (Some(amount), per_guest),
            PaymentRule::Guarantee { fee, per_guest } => (Some(fee), per_guest),
        };
        ServicePayment {
            kind: store::PaymentKind::of(&rule).into(),
            amount: amount.map(Into::into),
            per_guest,
            own: self.service.payment.is_some(),
        }
    }
}

/// A service's payment rule.
#[derive(SimpleObject)]
pub struct ServicePayment {
    pub kind: PaymentKind,
    /// Per booking, or per guest with `perGuest`; null for `NONE`.
    pub amount: Option<super::payments::MoneyValue>,
    pub per_guest: bool,
    /// Whether the service has a rule of its own (else the venue's).
    pub own: bool,
}

/// One stretch of working time within a day.
#[derive(SimpleObject)]
pub struct TimeInterval {
    pub opens: LocalTime,
    /// `24:00` is the midnight that ends the day.
    pub closes: LocalTime,
}

/// A date on which the venue, or one resource, works other hours than its
/// weekly ones.
pub struct HoursExceptionObject {
    exception: domain::HoursException,
    resource: Option<Resource>,
}

#[Object(name = "HoursException")]
impl HoursExceptionObject {
    /// The venue's calendar date.
    async fn date(&self) -> super::scalars::Date {
        super::scalars::Date(self.exception.date)
    }

    /// The hours worked that day; empty: closed all day.
    async fn hours(&self) -> Vec<TimeInterval> {
        self.exception
            .hours
            .iter()
            .map(|i| TimeInterval {
                opens: LocalTime(i.opens),
                closes: LocalTime(i.closes),
            })
            .collect()
    }

    /// The one resource it is for; null when it is the venue's own.
    async fn resource(&self) -> Option<ResourceObject> {
        self.resource.clone().map(ResourceObject)
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ResourceKind")]
pub enum ResourceKindValue {
    Table,
    Room,
    Practitioner,
    Other,
}

impl From<ResourceKind> for ResourceKindValue {
    fn from(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::Table => Self::Table,
            ResourceKind::Room => Self::Room,
            ResourceKind::Practitioner => Self::Practitioner,
            ResourceKind::Other => Self::Other,
        }
    }
}

/// Whether a venue asks for a guest field.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "FieldRule")]
pub enum FieldRuleValue {
    Required,
    Optional,
    /// Not asked for: a booking that gives it anyway is refused.
    NotCollected,
}

impl From<domain::privacy::FieldRule> for FieldRuleValue {
    fn from(rule: domain::privacy::FieldRule) -> Self {
        match rule {
            domain::privacy::FieldRule::Required => Self::Required,
            domain::privacy::FieldRule::Optional => Self::Optional,
            domain::privacy::FieldRule::NotCollected => Self::NotCollected,
        }
    }
}

/// What a venue asks guests to pay or secure when they book.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    None,
    Deposit,
    Prepayment,
    /// A card kept on file; `amount` is the no-show fee.
    Guarantee,
}

/// A period in which a venue, or one of its resources, takes no bookings.
/// It was defined on the venue's clock; `from` and `until` answer it with
/// the venue's offset at each end (they differ across a daylight-saving
/// change).
pub struct ClosureObject {
    closure: domain::Closure,
    venue: domain::VenueId,
    time_zone: chrono_tz::Tz,
    resource: Option<Resource>,
}

impl ClosureObject {
    pub fn new(closure: domain::Closure, venue: &Venue, resources: &[Resource]) -> Self {
        let resource = closure
            .resource_id
            .and_then(|id| resources.iter().find(|r| r.id == id).cloned());
        Self {
            closure,
            venue: venue.id,
            time_zone: venue.time_zone,
            resource,
        }
    }
}

#[Object(name = "Closure")]
impl ClosureObject {
    pub async fn id(&self) -> ID {
        ID(self.closure.id.to_string())
    }

    /// When it starts (included).
    async fn from(&self) -> chrono::DateTime<chrono::FixedOffset> {
        super::scalars::local(self.closure.starts_at, self.time_zone)
    }

    /// When it ends (excluded): bookings may start from then on.
    async fn until(&self) -> chrono::DateTime<chrono::FixedOffset> {
        super::scalars::local(self.closure.ends_at, self.time_zone)
    }

    /// The one resource closed; null when the whole venue is.
    async fn resource(&self) -> Option<ResourceObject> {
        self.resource.clone().map(ResourceObject)
    }

    /// Why, for the venue's staff, managers and admins (null when none
    /// was given). Null with one error for others: FORBIDDEN, or
    /// UNAUTHENTICATED without credentials.
    async fn reason(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        super::guard::require(
            ctx,
            Some(self.venue),
            super::coordinates::CLOSURE_REASON,
            super::guard::READ,
        )?;
        Ok(self.closure.reason.as_deref())
    }
}
