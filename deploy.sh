#!/usr/bin/env bash
# Deploy Notifierator with gcloud alone (the same deployment as terraform/).
#
#   ./deploy.sh [--config FILE] [--dry-run [--assume-deployed]]
#
# Idempotent: re-running creates what is missing and updates the rest (function, schedule, metrics,
# alert address and alert policies). --dry-run prints every command instead of running it, as for a
# fresh project; with --assume-deployed, as for a re-run over an existing deployment. "# query:" lines
# are the look-ups a real run makes first. Secret values never pass through this script.
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "$0")" && pwd)"
SHARED="$SOURCE_DIR/deploy" # files Terraform reads too
CONFIG=deploy.env
DRY_RUN=false
ASSUME_DEPLOYED=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    --assume-deployed) ASSUME_DEPLOYED=true; shift ;;
    -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if $ASSUME_DEPLOYED && ! $DRY_RUN; then
  echo "--assume-deployed only goes with --dry-run" >&2
  exit 2
fi

# --- Configuration ---------------------------------------------------------------------------------

# What a deploy.env may set. The function's own settings carry the names the function reads.
DEPLOYMENT_SETTINGS=(PROJECT_ID REGION NAME SCHEDULE SCHEDULE_TIME_ZONE LOOKBACK_MINUTES ALERT_EMAIL
  MISSING_RUN_ALERT FIRESTORE_LOCATION SLACK_ENABLED MEMORY TIMEOUT_SECONDS MAX_INSTANCES)
FUNCTION_SETTINGS=(MIXPANEL_PROJECT_ID MIXPANEL_REGION MIXPANEL_SERVICE_ACCOUNT EMAIL_TO EMAIL_FROM
  SMS_TO SMS_FROM TWILIO_ACCOUNT_SID TIMEZONE NOTIFY_WHEN_EMPTY PROJECT_LABEL PROFILE_URL_TEMPLATE
  EXTRA_PROPERTIES EXCLUDE_EMAIL_DOMAINS MAX_CATCH_UP_MINUTES LATE_ARRIVAL_MINUTES EMAIL_ROW_LIMIT
  MAX_MESSAGE_AGE_MINUTES)
declare -A RENAMED=([TIME_ZONE]=SCHEDULE_TIME_ZONE [DISPLAY_TIME_ZONE]=TIMEZONE)

fail() {
  echo "$CONFIG: $*" >&2
  exit 2
}

if [[ ! -f "$CONFIG" ]]; then
  echo "no configuration file $CONFIG: copy deploy.env.example to deploy.env and fill it in" >&2
  exit 2
fi
known=" ${DEPLOYMENT_SETTINGS[*]} ${FUNCTION_SETTINGS[*]} "
while IFS= read -r key; do
  if [[ -n "${RENAMED[$key]:-}" ]]; then
    fail "$key is now called ${RENAMED[$key]}"
  elif [[ "$known" != *" $key "* ]]; then
    fail "unknown setting $key (deploy.env.example lists them all)"
  fi
done < <(sed -n 's/^[[:space:]]*\(export[[:space:]][[:space:]]*\)\{0,1\}\([A-Za-z_][A-Za-z0-9_]*\)=.*/\2/p' "$CONFIG")
# Only the file counts, not whatever the caller's shell happens to export.
unset "${DEPLOYMENT_SETTINGS[@]}" "${FUNCTION_SETTINGS[@]}"
# shellcheck source=deploy.env.example
source "$CONFIG"

# The function's own defaults and limits, generated from notifier/variables.py.
declare -A CODE_DEFAULT=()
while IFS='=' read -r key value; do
  CODE_DEFAULT[$key]="$value"
done < <(grep -E '^[A-Z0-9_]+=' "$SHARED/function-defaults.env")

# Deployment defaults: the same as terraform/variables.tf.
REGION="${REGION:-us-central1}"
NAME="${NAME:-notifierator}"
SCHEDULE="${SCHEDULE:-0 * * * *}"
SCHEDULE_TIME_ZONE="${SCHEDULE_TIME_ZONE:-Etc/UTC}"
LOOKBACK_MINUTES="${LOOKBACK_MINUTES:-${CODE_DEFAULT[DEFAULT_LOOKBACK_MINUTES]}}"
MISSING_RUN_ALERT="${MISSING_RUN_ALERT:-true}"
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-nam5}"
SLACK_ENABLED="${SLACK_ENABLED:-false}"
MEMORY="${MEMORY:-256M}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-300}"
MAX_INSTANCES="${MAX_INSTANCES:-1}"

# Cloud Monitoring waits at most 23.5 hours for a metric that stops arriving; a run logs its summary
# up to the timeout after its tick and log-based metrics arrive minutes late (terraform/alerting.tf).
ABSENCE_CAP_MINUTES=1410
ABSENCE_SLACK_MINUTES=30

# --- Checks: the same as terraform/variables.tf ----------------------------------------------------

EMAIL='[^@,[:space:]<>"]+@[^@,[:space:]<>"]+\.[^@,[:space:]<>"]+'
IANA_ZONE='^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$'
E164="${CODE_DEFAULT[E164_PATTERN]}"

require() {
  [[ -n "${!1:-}" ]] || fail "$1 is required"
}
# matching NAME REGEX WHAT: the setting, when set, matches REGEX.
matching() {
  [[ -z "${!1:-}" || "${!1}" =~ $2 ]] || fail "$1 must be $3"
}
# each_matching NAME REGEX WHAT: every comma-separated entry matches REGEX.
each_matching() {
  local entry entries
  IFS=',' read -ra entries <<<"${!1:-}"
  for entry in "${entries[@]}"; do
    [[ "$entry" =~ $2 ]] || fail "$1 must hold $3"
  done
}
# whole NAME LOW HIGH: the setting, when set, is a whole number in [LOW, HIGH].
whole() {
  local value="${!1:-}"
  [[ -z "$value" ]] && return 0
  if ! [[ "$value" =~ ^[0-9]{1,9}$ ]] || ((10#$value < $2 || 10#$value > $3)); then
    fail "$1 must be a whole number from $2 to $3"
  fi
}
# needs NAME OTHER: NAME is required once OTHER is set.
needs() {
  [[ -z "${!2:-}" || -n "${!1:-}" ]] || fail "$1 is required when $2 is set"
}

for setting in PROJECT_ID MIXPANEL_PROJECT_ID ALERT_EMAIL; do
  require "$setting"
done
matching PROJECT_ID '^[a-z][a-z0-9-]{4,28}[a-z0-9]$' "a Google Cloud project id"
matching REGION '^[a-z]+-[a-z]+[0-9]$' "a Cloud Functions region such as us-central1"
matching NAME '^[a-z][a-z0-9-]{2,20}[a-z0-9]$' "4 to 22 lowercase letters, digits or hyphens, starting with a letter"
matching FIRESTORE_LOCATION '^(nam5|eur3|[a-z]+-[a-z]+[0-9]+)$' "nam5, eur3 or a region such as us-central1"
matching MEMORY '^(128M|256M|512M|1G)$' "128M, 256M, 512M or 1G"
whole TIMEOUT_SECONDS 120 540
whole MAX_INSTANCES 1 5
matching SCHEDULE '^[^[:space:]]+( [^[:space:]]+){4}$' 'a five-field cron expression such as "0 * * * *"'
matching SCHEDULE_TIME_ZONE "$IANA_ZONE" "an IANA zone name such as Etc/UTC"
whole LOOKBACK_MINUTES 1 "${CODE_DEFAULT[MAX_LOOKBACK_MINUTES]}"
matching ALERT_EMAIL "^$EMAIL$" "an email address"
matching MISSING_RUN_ALERT '^(true|false)$' "true or false"
matching SLACK_ENABLED '^(true|false)$' "true or false"
if $MISSING_RUN_ALERT && ((LOOKBACK_MINUTES + ABSENCE_SLACK_MINUTES > ABSENCE_CAP_MINUTES)); then
  fail "the no-successful-run alert cannot watch a $LOOKBACK_MINUTES-minute schedule: Cloud Monitoring" \
    "waits at most $ABSENCE_CAP_MINUTES minutes for a missing run, which must cover one interval plus" \
    "$ABSENCE_SLACK_MINUTES minutes. Set MISSING_RUN_ALERT=false (failed runs still alert) or use a" \
    "schedule of at most $((ABSENCE_CAP_MINUTES - ABSENCE_SLACK_MINUTES)) minutes."
fi
matching MIXPANEL_PROJECT_ID '^[0-9]+$' "the numeric project id"
matching MIXPANEL_REGION '^(us|eu|in)$' "us, eu or in"
each_matching EMAIL_TO "^$EMAIL$" "plain addresses such as growth@example.com"
needs EMAIL_FROM EMAIL_TO
matching EMAIL_FROM "^($EMAIL|[^<>]*<$EMAIL>)$" 'alerts@example.com or "Name <alerts@example.com>"'
each_matching SMS_TO "$E164" "E.164 numbers such as +14155550100"
needs SMS_FROM SMS_TO
needs TWILIO_ACCOUNT_SID SMS_TO
matching SMS_FROM "($E164|^MG[0-9a-fA-F]{32}$)" "an E.164 number or a Messaging Service SID (MG + 32 hex)"
matching TWILIO_ACCOUNT_SID '^AC[0-9a-fA-F]{32}$' "AC followed by 32 hex characters"
matching TIMEZONE "$IANA_ZONE" "an IANA zone name such as America/New_York"
matching NOTIFY_WHEN_EMPTY '^(true|false)$' "true or false"
matching PROFILE_URL_TEMPLATE '^https://.*\{distinct_id\}' "an https:// URL holding {distinct_id}"
IFS=',' read -ra extra_properties <<<"${EXTRA_PROPERTIES:-}"
max_extra_properties="${CODE_DEFAULT[MAX_EXTRA_PROPERTIES]}"
if ((${#extra_properties[@]} > max_extra_properties)); then
  fail "EXTRA_PROPERTIES holds at most $max_extra_properties names"
fi
whole EMAIL_ROW_LIMIT 1 10000
whole MAX_CATCH_UP_MINUTES 0 "${CODE_DEFAULT[MAX_LOOKBACK_MINUTES]}"
whole LATE_ARRIVAL_MINUTES 0 1440
whole MAX_MESSAGE_AGE_MINUTES 1 10080

# --- What gets deployed ----------------------------------------------------------------------------

TOPIC="$NAME-trigger"
JOB="$NAME-tick"
RUNTIME_SA="$NAME-run@$PROJECT_ID.iam.gserviceaccount.com"
TRIGGER_SA="$NAME-trigger@$PROJECT_ID.iam.gserviceaccount.com"
PAYLOAD="{\"lookback_minutes\":$LOOKBACK_MINUTES}"
FIRESTORE_DATABASE="$NAME" # its own database: a (default) one is never touched
TTL_COLLECTION_GROUPS=(runs reported)
# Secrets by the variable that names them; Slack only when enabled, as an empty secret would make
# every run a bad configuration.
SECRET_VARIABLES=(MIXPANEL_SECRET SENDGRID_API_KEY TWILIO_AUTH_TOKEN)
declare -A SECRETS=(
  [MIXPANEL_SECRET]="$NAME-mixpanel-secret"
  [SENDGRID_API_KEY]="$NAME-sendgrid-api-key"
  [TWILIO_AUTH_TOKEN]="$NAME-twilio-auth-token"
  [SLACK_WEBHOOK_URL]="$NAME-slack-webhook-url"
)
if $SLACK_ENABLED; then
  SECRET_VARIABLES+=(SLACK_WEBHOOK_URL)
fi

# The function's environment: only what is set and differs from the function's own default.
FUNCTION_ENV=()
deploy_setting() {
  [[ -z "$2" || "$2" == "${CODE_DEFAULT[$1]:-}" ]] && return 0
  # "|" separates entries below, because EMAIL_TO holds commas.
  [[ "$2" != *"|"* ]] || fail "$1 must not contain \"|\""
  FUNCTION_ENV+=("$1=$2")
}
for variable in "${SECRET_VARIABLES[@]}"; do
  deploy_setting "$variable" "projects/$PROJECT_ID/secrets/${SECRETS[$variable]}/versions/latest"
done
for variable in "${FUNCTION_SETTINGS[@]}"; do
  deploy_setting "$variable" "${!variable:-}"
done
deploy_setting DEFAULT_LOOKBACK_MINUTES "$LOOKBACK_MINUTES"
deploy_setting STATE_STORE firestore
deploy_setting FIRESTORE_DATABASE "$FIRESTORE_DATABASE"
deploy_setting RUN_BUDGET_SECONDS "$((TIMEOUT_SECONDS - 60))" # ends a minute before the platform stops the run
FUNCTION_ENV_FLAG="^|^$(IFS='|' && echo "${FUNCTION_ENV[*]}")"

# --- Running, or printing ----------------------------------------------------------------------------

# Run a command, or print it (shell-quoted) under --dry-run.
run() {
  if $DRY_RUN; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# query ANSWER COMMAND...: a look-up's output. Under --dry-run it is printed (to the script's own
# output, fd 3, as its callers capture stdout), not run, and answers nothing (a fresh project) or
# ANSWER (--assume-deployed).
exec 3>&1
query() {
  local answer="$1"
  shift
  if $DRY_RUN; then
    {
      printf '# query: '
      printf '%q ' "$@"
      printf '\n'
    } >&3
    if $ASSUME_DEPLOYED; then
      echo "$answer"
    fi
  else
    "$@"
  fi
}

# True when a describe command finds the resource.
exists() {
  [[ -n "$(query found "$@" --format='value(name)' 2>/dev/null)" ]]
}

# Creating an alert policy on a log-based metric made seconds earlier fails ("Cannot find metric(s)")
# until Cloud Monitoring sees the metric, which can take minutes: retry that error for up to 10 minutes.
run_once_metrics_visible() {
  if $DRY_RUN; then
    run "$@"
    return
  fi
  local attempt output
  for attempt in 1 2 3 4 5 6 7 8 9 10 11; do
    if output="$("$@" 2>&1)"; then
      printf '%s\n' "$output"
      return 0
    fi
    if [[ "$output" != *"Cannot find metric"* || $attempt == 11 ]]; then
      printf '%s\n' "$output" >&2
      return 1
    fi
    echo "# the new log-based metrics are not visible to alerting yet; trying again in 60 s" >&2
    sleep 60
  done
}

# render TEMPLATE NAME=VALUE...: a deploy/*.tftpl (Terraform's templatefile syntax) with its ${NAME}
# placeholders filled.
render() {
  local template="$1" text pair
  shift
  text="$(<"$template")"
  for pair in "$@"; do
    text="${text//"\${${pair%%=*}}"/"${pair#*=}"}"
  done
  if [[ "$text" == *"\${"* ]]; then
    echo "$template: a placeholder is left unfilled" >&2
    exit 1
  fi
  printf '%s\n' "$text"
}

# --- The deployment ------------------------------------------------------------------------------------

echo "# 1. APIs (iam before the service accounts, firestore before the database)"
run gcloud services enable --project="$PROJECT_ID" \
  artifactregistry.googleapis.com cloudbuild.googleapis.com cloudfunctions.googleapis.com \
  cloudscheduler.googleapis.com eventarc.googleapis.com firestore.googleapis.com iam.googleapis.com \
  logging.googleapis.com monitoring.googleapis.com pubsub.googleapis.com run.googleapis.com \
  secretmanager.googleapis.com storage.googleapis.com

echo "# 2. Service accounts: the function's, and the trigger's"
for account in "$NAME-run" "$NAME-trigger"; do
  if ! exists gcloud iam service-accounts describe "$account@$PROJECT_ID.iam.gserviceaccount.com" --project="$PROJECT_ID"; then
    run gcloud iam service-accounts create "$account" --project="$PROJECT_ID" --display-name="Notifierator $account"
  fi
done

echo "# 3. Secrets (empty), each readable by the function's account only"
for variable in "${SECRET_VARIABLES[@]}"; do
  secret="${SECRETS[$variable]}"
  if ! exists gcloud secrets describe "$secret" --project="$PROJECT_ID"; then
    run gcloud secrets create "$secret" --project="$PROJECT_ID" --replication-policy=automatic
  fi
  run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUNTIME_SA" --role=roles/secretmanager.secretAccessor --format=none
done

echo "# 4. Firestore: the run history's own database, TTL on expire_at, access to this database only"
if ! exists gcloud firestore databases describe --database="$FIRESTORE_DATABASE" --project="$PROJECT_ID"; then
  run gcloud firestore databases create --database="$FIRESTORE_DATABASE" --project="$PROJECT_ID" \
    --location="$FIRESTORE_LOCATION" --type=firestore-native --delete-protection
fi
for group in "${TTL_COLLECTION_GROUPS[@]}"; do
  ttl_fields="$(query expire_at gcloud firestore fields ttls list --project="$PROJECT_ID" \
    --database="$FIRESTORE_DATABASE" --collection-group="$group" --format='value(name.basename())')"
  if [[ "$ttl_fields" != *expire_at* ]]; then
    run gcloud firestore fields ttls update expire_at --project="$PROJECT_ID" \
      --database="$FIRESTORE_DATABASE" --collection-group="$group" --enable-ttl --async
  fi
done
# Firestore has no IAM binding on a database, only on the project: roles/datastore.user there, with a
# condition on this database's name, is the narrowest grant (terraform/firestore.tf says the same).
run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$RUNTIME_SA" \
  --role=roles/datastore.user --format=none \
  --condition="expression=resource.name == \"projects/$PROJECT_ID/databases/$FIRESTORE_DATABASE\",title=$NAME-state-only,description=Only the $FIRESTORE_DATABASE Firestore database"

echo "# 5. Topic"
if ! exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT_ID"; then
  run gcloud pubsub topics create "$TOPIC" --project="$PROJECT_ID" --message-retention-duration=1d
fi

echo "# 6. Function (deploy creates or updates; uploads what .gcloudignore lets through)"
run gcloud functions deploy "$NAME" --gen2 --project="$PROJECT_ID" --region="$REGION" \
  --runtime=python312 --entry-point=notify --source="$SOURCE_DIR" \
  --trigger-topic="$TOPIC" --trigger-service-account="$TRIGGER_SA" --retry \
  --ingress-settings=internal-only --memory="$MEMORY" --timeout="${TIMEOUT_SECONDS}s" \
  --min-instances=0 --max-instances="$MAX_INSTANCES" --concurrency=1 \
  --service-account="$RUNTIME_SA" --set-env-vars="$FUNCTION_ENV_FLAG"
run gcloud run services add-iam-policy-binding "$NAME" --project="$PROJECT_ID" --region="$REGION" \
  --member="serviceAccount:$TRIGGER_SA" --role=roles/run.invoker --format=none

echo "# 7. Scheduler job (create or update), retried 3 times when a publish fails"
verb=create
if exists gcloud scheduler jobs describe "$JOB" --project="$PROJECT_ID" --location="$REGION"; then
  verb=update
fi
run gcloud scheduler jobs "$verb" pubsub "$JOB" --project="$PROJECT_ID" --location="$REGION" \
  --description="Asks Notifierator for the users of the last $LOOKBACK_MINUTES minutes." \
  --schedule="$SCHEDULE" --time-zone="$SCHEDULE_TIME_ZONE" --topic="$TOPIC" --message-body="$PAYLOAD" \
  --max-retry-attempts=3

echo "# 8. Log-based metrics on the run summaries"
run_summaries="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$NAME\" AND jsonPayload.event=\"run_summary\""
declare -A METRIC_FILTERS=([failed_runs]="$run_summaries AND severity>=ERROR" [good_runs]="$run_summaries AND severity<ERROR")
declare -A METRIC_DESCRIPTIONS=(
  [failed_runs]="$NAME run summaries at ERROR: runs that need a person"
  [good_runs]="$NAME run summaries below ERROR: runs that did their job"
)
for metric in failed_runs good_runs; do
  verb=create
  if exists gcloud logging metrics describe "$NAME/$metric" --project="$PROJECT_ID"; then
    verb=update
  fi
  run gcloud logging metrics "$verb" "$NAME/$metric" --project="$PROJECT_ID" \
    --description="${METRIC_DESCRIPTIONS[$metric]}" --log-filter="${METRIC_FILTERS[$metric]}"
done

echo "# 9. Alert email (the channel is created, or pointed at ALERT_EMAIL)"
channel_name="$NAME alerts"
channel="$(query "projects/$PROJECT_ID/notificationChannels/DEPLOYED" gcloud beta monitoring channels list \
  --project="$PROJECT_ID" --filter="displayName=\"$channel_name\"" --limit=1 --format='value(name)')"
if [[ -n "$channel" ]]; then
  run gcloud beta monitoring channels update "$channel" --project="$PROJECT_ID" \
    --update-channel-labels="email_address=$ALERT_EMAIL"
elif $DRY_RUN; then
  run gcloud beta monitoring channels create --project="$PROJECT_ID" --display-name="$channel_name" \
    --type=email --channel-labels="email_address=$ALERT_EMAIL" --format='value(name)'
  channel="projects/$PROJECT_ID/notificationChannels/NEW"
else
  channel="$(gcloud beta monitoring channels create --project="$PROJECT_ID" --display-name="$channel_name" \
    --type=email --channel-labels="email_address=$ALERT_EMAIL" --format='value(name)')"
fi

echo "# 10. Alert policies from deploy/alert-*.json.tftpl (created, or replaced by the file)"
absence=$((2 * LOOKBACK_MINUTES))
((absence < LOOKBACK_MINUTES + ABSENCE_SLACK_MINUTES)) && absence=$((LOOKBACK_MINUTES + ABSENCE_SLACK_MINUTES))
((absence > ABSENCE_CAP_MINUTES)) && absence=$ABSENCE_CAP_MINUTES
POLICIES="$(mktemp -d "${TMPDIR:-/tmp}/$NAME-policies.XXXXXX")"
if $DRY_RUN; then
  echo "# the policies below are rendered in $POLICIES"
else
  trap 'rm -rf "$POLICIES"' EXIT
fi
render "$SHARED/alert-runs-failing.json.tftpl" "name=$NAME" >"$POLICIES/runs-failing.json"
render "$SHARED/alert-runs-missing.json.tftpl" "name=$NAME" "absence_minutes=$absence" \
  "absence_seconds=$((absence * 60))" >"$POLICIES/runs-missing.json"
for policy in runs-failing runs-missing; do
  file="$POLICIES/$policy.json"
  display_name="$(sed -n 's/^  "displayName": "\(.*\)",$/\1/p' "$file")"
  existing="$(query "projects/$PROJECT_ID/alertPolicies/DEPLOYED" gcloud alpha monitoring policies list \
    --project="$PROJECT_ID" --filter="displayName=\"$display_name\"" --limit=1 --format='value(name)')"
  if [[ "$policy" == runs-missing ]] && ! $MISSING_RUN_ALERT; then
    if [[ -n "$existing" ]]; then
      run gcloud alpha monitoring policies delete "$existing" --project="$PROJECT_ID" --quiet
    fi
  elif [[ -n "$existing" ]]; then
    run gcloud alpha monitoring policies update "$existing" --project="$PROJECT_ID" \
      --policy-from-file="$file" --set-notification-channels="$channel"
  else
    run_once_metrics_visible gcloud alpha monitoring policies create --project="$PROJECT_ID" \
      --policy-from-file="$file" --notification-channels="$channel"
  fi
done

echo "# Done. Add each secret's value once (read from stdin, never echoed), for example:"
for variable in "${SECRET_VARIABLES[@]}"; do
  echo "#   gcloud secrets versions add ${SECRETS[$variable]} --project=$PROJECT_ID --data-file=-   # $variable"
done
echo "# Then check credentials and settings (sends nothing): .venv/bin/python -m notifier check --env-file $CONFIG"
echo "# Trigger a run by hand: gcloud pubsub topics publish $TOPIC --project=$PROJECT_ID --message='{\"dry_run\": true}'"
