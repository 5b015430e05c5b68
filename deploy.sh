#!/usr/bin/env bash
# Deploy Notifierator with gcloud alone (the same deployment as terraform/).
#
#   ./deploy.sh [--config FILE] [--dry-run]
#
# Idempotent: re-running updates what exists. --dry-run prints every command instead of running it.
# Secret values never pass through this script: it creates empty secrets and says how to add them.
set -euo pipefail

CONFIG=deploy.env
DRY_RUN=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ ! -f "$CONFIG" ]]; then
  echo "no configuration file $CONFIG: copy deploy.env.example to deploy.env and fill it in" >&2
  exit 2
fi
# shellcheck source=deploy.env.example
source "$CONFIG"

for required in PROJECT_ID REGION NAME SCHEDULE TIME_ZONE LOOKBACK_MINUTES MIXPANEL_PROJECT_ID ALERT_EMAIL; do
  if [[ -z "${!required:-}" ]]; then
    echo "$CONFIG: $required is required" >&2
    exit 2
  fi
done
if ! [[ "$LOOKBACK_MINUTES" =~ ^[0-9]+$ ]] || ((LOOKBACK_MINUTES < 1 || LOOKBACK_MINUTES > 44640)); then
  echo "$CONFIG: LOOKBACK_MINUTES must be a whole number from 1 to 44640" >&2
  exit 2
fi

MEMORY="${MEMORY:-256M}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-300}"
MAX_INSTANCES="${MAX_INSTANCES:-1}"
TOPIC="$NAME-trigger"
JOB="$NAME-tick"
RUNTIME_SA="$NAME-run@$PROJECT_ID.iam.gserviceaccount.com"
TRIGGER_SA="$NAME-trigger@$PROJECT_ID.iam.gserviceaccount.com"
PAYLOAD="{\"lookback_minutes\":$LOOKBACK_MINUTES}"
declare -A SECRETS=(
  [MIXPANEL_SECRET]="$NAME-mixpanel-secret"
  [SENDGRID_API_KEY]="$NAME-sendgrid-api-key"
  [TWILIO_AUTH_TOKEN]="$NAME-twilio-auth-token"
)
SOURCE_DIR="$(cd "$(dirname "$0")" && pwd)"

# Run a command, or print it (shell-quoted) under --dry-run.
run() {
  if $DRY_RUN; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# True when a describe command finds the resource; under --dry-run nothing is assumed to exist.
exists() {
  if $DRY_RUN; then
    return 1
  fi
  "$@" >/dev/null 2>&1
}

policy_exists() {
  if $DRY_RUN; then
    return 1
  fi
  [[ -n "$(gcloud monitoring policies list --project="$PROJECT_ID" \
    --filter="displayName=\"$1\"" --format='value(name)')" ]]
}

secret_name() {
  echo "projects/$PROJECT_ID/secrets/${SECRETS[$1]}/versions/latest"
}

# The function's environment; "|" separates entries because EMAIL_TO holds commas and EMAIL_FROM "@".
env_vars() {
  local pairs=(
    "MIXPANEL_PROJECT_ID=$MIXPANEL_PROJECT_ID"
    "MIXPANEL_REGION=${MIXPANEL_REGION:-us}"
    "MIXPANEL_SERVICE_ACCOUNT=${MIXPANEL_SERVICE_ACCOUNT:-}"
    "MIXPANEL_SECRET=$(secret_name MIXPANEL_SECRET)"
    "EMAIL_TO=${EMAIL_TO:-}"
    "EMAIL_FROM=${EMAIL_FROM:-}"
    "SENDGRID_API_KEY=$(secret_name SENDGRID_API_KEY)"
    "SMS_TO=${SMS_TO:-}"
    "SMS_FROM=${SMS_FROM:-}"
    "TWILIO_ACCOUNT_SID=${TWILIO_ACCOUNT_SID:-}"
    "TWILIO_AUTH_TOKEN=$(secret_name TWILIO_AUTH_TOKEN)"
    "TIMEZONE=${DISPLAY_TIME_ZONE:-UTC}"
    "DEFAULT_LOOKBACK_MINUTES=$LOOKBACK_MINUTES"
    "NOTIFY_WHEN_EMPTY=${NOTIFY_WHEN_EMPTY:-false}"
    "RUN_BUDGET_SECONDS=$((TIMEOUT_SECONDS - 60))"
    "MAX_MESSAGE_AGE_MINUTES=1440"
    "EMAIL_ROW_LIMIT=500"
  )
  local pair
  for pair in "${pairs[@]}"; do
    if [[ "$pair" == *"|"* ]]; then
      echo "$CONFIG: ${pair%%=*} must not contain \"|\"" >&2
      return 2
    fi
  done
  local IFS="|"
  echo "^|^${pairs[*]}"
}

echo "# 1. APIs"
run gcloud services enable --project="$PROJECT_ID" \
  artifactregistry.googleapis.com cloudbuild.googleapis.com cloudfunctions.googleapis.com \
  cloudscheduler.googleapis.com eventarc.googleapis.com logging.googleapis.com monitoring.googleapis.com \
  pubsub.googleapis.com run.googleapis.com secretmanager.googleapis.com storage.googleapis.com

echo "# 2. Service accounts: the function's, and the trigger's"
for account in "$NAME-run" "$NAME-trigger"; do
  if ! exists gcloud iam service-accounts describe "$account@$PROJECT_ID.iam.gserviceaccount.com" --project="$PROJECT_ID"; then
    run gcloud iam service-accounts create "$account" --project="$PROJECT_ID" --display-name="Notifierator $account"
  fi
done

echo "# 3. Secrets (empty), each readable by the function's account only"
for variable in MIXPANEL_SECRET SENDGRID_API_KEY TWILIO_AUTH_TOKEN; do
  secret="${SECRETS[$variable]}"
  if ! exists gcloud secrets describe "$secret" --project="$PROJECT_ID"; then
    run gcloud secrets create "$secret" --project="$PROJECT_ID" --replication-policy=automatic
  fi
  run gcloud secrets add-iam-policy-binding "$secret" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUNTIME_SA" --role=roles/secretmanager.secretAccessor
done

echo "# 4. Topic"
if ! exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT_ID"; then
  run gcloud pubsub topics create "$TOPIC" --project="$PROJECT_ID" --message-retention-duration=1d
fi

echo "# 5. Function (deploy creates or updates)"
run gcloud functions deploy "$NAME" --gen2 --project="$PROJECT_ID" --region="$REGION" \
  --runtime=python312 --entry-point=notify --source="$SOURCE_DIR" \
  --trigger-topic="$TOPIC" --trigger-service-account="$TRIGGER_SA" --retry \
  --ingress-settings=internal-only --memory="$MEMORY" --timeout="${TIMEOUT_SECONDS}s" \
  --min-instances=0 --max-instances="$MAX_INSTANCES" --concurrency=1 \
  --service-account="$RUNTIME_SA" --set-env-vars="$(env_vars)"
run gcloud run services add-iam-policy-binding "$NAME" --project="$PROJECT_ID" --region="$REGION" \
  --member="serviceAccount:$TRIGGER_SA" --role=roles/run.invoker

echo "# 6. Scheduler job"
verb=create
if exists gcloud scheduler jobs describe "$JOB" --project="$PROJECT_ID" --location="$REGION"; then
  verb=update
fi
run gcloud scheduler jobs "$verb" pubsub "$JOB" --project="$PROJECT_ID" --location="$REGION" \
  --schedule="$SCHEDULE" --time-zone="$TIME_ZONE" --topic="$TOPIC" --message-body="$PAYLOAD"

echo "# 7. Log-based metrics on the run summaries"
filter="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$NAME\" AND jsonPayload.event=\"run_summary\""
for metric in failed_runs good_runs; do
  condition="severity>=ERROR"
  [[ "$metric" == good_runs ]] && condition="severity<ERROR"
  metric_verb=create
  if exists gcloud logging metrics describe "$NAME/$metric" --project="$PROJECT_ID"; then
    metric_verb=update
  fi
  run gcloud logging metrics "$metric_verb" "$NAME/$metric" --project="$PROJECT_ID" \
    --description="Notifierator run summaries ($condition)" --log-filter="$filter AND $condition"
done

echo "# 8. Alerts by email: a failed run, and no good run for two intervals"
channel_name="Notifierator alerts"
channel=""
if ! $DRY_RUN; then
  channel="$(gcloud beta monitoring channels list --project="$PROJECT_ID" \
    --filter="displayName=\"$channel_name\"" --format='value(name)' | head -n 1)"
fi
if [[ -z "$channel" ]]; then
  if $DRY_RUN; then
    run gcloud beta monitoring channels create --project="$PROJECT_ID" --display-name="$channel_name" \
      --type=email --channel-labels="email_address=$ALERT_EMAIL" --format='value(name)'
    channel="projects/$PROJECT_ID/notificationChannels/CHANNEL_ID"
  else
    channel="$(gcloud beta monitoring channels create --project="$PROJECT_ID" --display-name="$channel_name" \
      --type=email --channel-labels="email_address=$ALERT_EMAIL" --format='value(name)')"
  fi
fi
silence=$((2 * LOOKBACK_MINUTES * 60))
((silence > 84600)) && silence=84600  # Cloud Monitoring caps an absence condition at 23.5 hours
metric_filter() {
  echo "metric.type=\\\"logging.googleapis.com/user/$NAME/$1\\\" AND resource.type=\\\"cloud_run_revision\\\""
}
aggregation='"aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}]'
failing_policy='{"displayName": "Notifierator: a run failed", "combiner": "OR", "conditions": [{'
failing_policy+='"displayName": "a run_summary line at ERROR", "conditionThreshold": {'
failing_policy+="\"filter\": \"$(metric_filter failed_runs)\", \"comparison\": \"COMPARISON_GT\", "
failing_policy+="\"thresholdValue\": 0, \"duration\": \"0s\", $aggregation}}]}"
missing_policy='{"displayName": "Notifierator: no successful run for two intervals", "combiner": "OR", '
missing_policy+='"conditions": [{"displayName": "no good run_summary line", "conditionAbsent": {'
missing_policy+="\"filter\": \"$(metric_filter good_runs)\", \"duration\": \"${silence}s\", $aggregation}}]}"
for policy in "$failing_policy" "$missing_policy"; do
  display_name="$(sed -n 's/^{"displayName": "\([^"]*\)".*/\1/p' <<<"$policy" | head -n 1)"
  if ! policy_exists "$display_name"; then
    run gcloud monitoring policies create --project="$PROJECT_ID" --policy="$policy" --notification-channels="$channel"
  fi
done

echo "# Done. Add each secret's value (read from stdin, never echoed), for example:"
for variable in MIXPANEL_SECRET SENDGRID_API_KEY TWILIO_AUTH_TOKEN; do
  echo "#   gcloud secrets versions add ${SECRETS[$variable]} --project=$PROJECT_ID --data-file=-   # $variable"
done
echo "# Trigger a run by hand: gcloud pubsub topics publish $TOPIC --project=$PROJECT_ID --message='{\"dry_run\": true}'"
