#!/usr/bin/env bash
# Deploy and operate Notifierator with gcloud alone (the same deployment as terraform/).
#
#   ./deploy.sh [--config FILE] [--dry-run [--assume-deployed]] [COMMAND]
#
#   deploy      (the default) create what is missing, update what changed; a new scheduler job is
#               created paused, so nothing runs before `python -m notifier check` passes
#   resume      resume the scheduler job and switch the "no successful run" alert on
#   pause       pause the scheduler job and switch that alert off
#   rollback    send all traffic back to the function's previous revision
#   uninstall   delete the deployment (--yes to confirm); the database and the secrets stay
#
# Idempotent. --dry-run prints every command instead of running it, as for a fresh project; with
# --assume-deployed, as for a re-run over this same deployment. "# query:" lines are the look-ups a
# real run makes first. Secret values never pass through this script. docs/deploy.md, docs/operations.md.
set -euo pipefail

SOURCE_DIR="$(cd "$(dirname "$0")" && pwd)"
SHARED="$SOURCE_DIR/deploy" # files Terraform reads too
CONFIG=deploy.env
DRY_RUN=false
ASSUME_DEPLOYED=false
CONFIRMED=false
COMMAND=deploy
while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    --assume-deployed) ASSUME_DEPLOYED=true; shift ;;
    --yes) CONFIRMED=true; shift ;;
    deploy | resume | pause | rollback | uninstall) COMMAND="$1"; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if $ASSUME_DEPLOYED && ! $DRY_RUN; then
  echo "--assume-deployed only goes with --dry-run" >&2
  exit 2
fi

# --- Configuration ---------------------------------------------------------------------------------

# The variables' table (notifier/variables.py, written to deploy/variables.env): NAME.fact=value.
declare -A FACT=()
FUNCTION_SETTINGS=()   # what deploy.env may set for the function, named as the function reads them
DEPLOYMENT_SETTINGS=() # the deployment's own
while IFS='=' read -r key value; do
  FACT[$key]="$value"
  case "$key" in
    *.setting) FUNCTION_SETTINGS+=("${key%.setting}") ;;
    *.deployment) DEPLOYMENT_SETTINGS+=("${key%.deployment}") ;;
  esac
done < <(grep -E '^[A-Za-z0-9_.]+=' "$SHARED/variables.env")
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

# --- Checks: every setting against the table, every problem at once ------------------------------

PROBLEMS=()
problem() {
  PROBLEMS+=("$*")
}

# check_setting NAME: NAME's value against its facts: required, kind, bounds, pattern, entries.
check_setting() {
  local name="$1" value="${!1:-}" with="${FACT[$1.required_with]:-}"
  if [[ -z "$value" ]]; then
    [[ "${FACT[$name.required]:-}" != true ]] || problem "$name is required"
    [[ -z "$with" || -z "${!with:-}" ]] || problem "$name is required when $with is set"
    return 0
  fi
  case "${FACT[$name.kind]}" in
    whole) check_whole "$name" "$value" ;;
    boolean) [[ "$value" =~ ^(true|false)$ ]] || problem "$name must be true or false" ;;
    list) check_entries "$name" "$value" ;;
    *) [[ -z "${FACT[$name.pattern]:-}" || "$value" =~ ${FACT[$name.pattern]} ]] || problem "$name must be ${FACT[$name.wants]}" ;;
  esac
}

check_whole() {
  if ! [[ "$2" =~ ^[0-9]{1,9}$ ]] || ((10#$2 < ${FACT[$1.min]} || 10#$2 > ${FACT[$1.max]})); then
    problem "$1 must be ${FACT[$1.wants]}"
  fi
}

check_entries() {
  local entry entries
  IFS=',' read -ra entries <<<"$2"
  if [[ -n "${FACT[$1.entries]:-}" ]] && ((${#entries[@]} > FACT[$1.entries])); then
    problem "$1 holds at most ${FACT[$1.entries]} entries"
  fi
  for entry in "${entries[@]}"; do
    entry="${entry#"${entry%%[![:space:]]*}"}"
    [[ "${entry%"${entry##*[![:space:]]}"}" =~ ${FACT[$1.pattern]} ]] || {
      problem "$1 must hold ${FACT[$1.wants]} in each entry"
      return 0
    }
  done
}

# The schedule, its fields single-spaced, and its interval: each run's window (variables.env admits
# only schedules of one fixed interval; terraform/schedule.tf reads them the same way).
read -ra schedule_fields <<<"${SCHEDULE:-${FACT[SCHEDULE.default]}}"
SCHEDULE="${schedule_fields[*]}"
schedule_minutes() {
  local minute="${schedule_fields[0]:-}" hour="${schedule_fields[1]:-}"
  if [[ "$hour" == "*" && "$minute" == "*" ]]; then
    echo 1
  elif [[ "$hour" == "*" && "$minute" == "*/"* ]]; then
    echo "${minute#*/}"
  elif [[ "$hour" == "*" ]]; then
    echo 60
  elif [[ "$hour" == "*/"* ]]; then
    echo $((60 * ${hour#*/}))
  else
    echo 1440
  fi
}

for setting in "${DEPLOYMENT_SETTINGS[@]}" "${FUNCTION_SETTINGS[@]}"; do
  check_setting "$setting"
done
if [[ "$SCHEDULE" =~ ${FACT[SCHEDULE.pattern]} ]]; then
  interval="$(schedule_minutes)"
  if [[ -n "${LOOKBACK_MINUTES:-}" && "$LOOKBACK_MINUTES" != "$interval" ]]; then
    problem "LOOKBACK_MINUTES must equal the schedule's interval ($interval minutes), or be left out:" \
      "a longer window reports users twice, a shorter one never reports some"
  fi
  LOOKBACK_MINUTES="$interval"
fi
if ((${#PROBLEMS[@]})); then
  printf '%s\n' "${PROBLEMS[@]/#/$CONFIG: }" >&2
  exit 2
fi

# Deployment defaults: the table's (terraform/variables.tf holds the same literals).
for setting in "${DEPLOYMENT_SETTINGS[@]}"; do
  if [[ -z "${!setting:-}" && -n "${FACT[$setting.default]:-}" ]]; then
    printf -v "$setting" '%s' "${FACT[$setting.default]}"
  fi
done

# --- What gets deployed ----------------------------------------------------------------------------

TOPIC="$NAME${FACT[suffix.topic]}"
JOB="$NAME${FACT[suffix.job]}"
RUNTIME_SA="$NAME${FACT[suffix.runtime_account]}@$PROJECT_ID.iam.gserviceaccount.com"
TRIGGER_SA="$NAME${FACT[suffix.trigger_account]}@$PROJECT_ID.iam.gserviceaccount.com"
BUILD_SA="$NAME${FACT[suffix.build_account]}@$PROJECT_ID.iam.gserviceaccount.com"
ACCOUNTS=("$RUNTIME_SA" "$TRIGGER_SA" "$BUILD_SA")
PAYLOAD="{\"lookback_minutes\":$LOOKBACK_MINUTES}"
FIRESTORE_DATABASE="$NAME" # its own database: a (default) one is never touched
TTL_COLLECTION_GROUPS=(runs reported)
METRICS=(failed_runs good_runs)
POLICIES=(runs-failing runs-missing)
# Secrets by the variable that names them; Slack only when enabled, as an empty secret would make
# every run a bad configuration.
declare -A SECRETS=()
SECRET_VARIABLES=()
for key in "${!FACT[@]}"; do
  variable="${key%.secret}"
  if [[ "$key" == *.secret ]] && { $SLACK_ENABLED || [[ "$variable" != SLACK_WEBHOOK_URL ]]; }; then
    SECRETS[$variable]="$NAME-${FACT[$key]}"
  fi
done
mapfile -t SECRET_VARIABLES < <(printf '%s\n' "${!SECRETS[@]}" | sort)

# The function's environment: only what is set and differs from the function's own default.
FUNCTION_ENV=()
deploy_setting() {
  [[ -z "$2" || "$2" == "${FACT[$1.default]:-}" ]] && return 0
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
# The run's own budget ends before the platform would stop it.
deploy_setting RUN_BUDGET_SECONDS "$((TIMEOUT_SECONDS - FACT[RUN_BUDGET_MARGIN_SECONDS]))"
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
# ANSWER (--assume-deployed: this same deployment, already made).
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

# run_retrying PATTERN ATTEMPTS SECONDS COMMAND...: the command, run again while it fails saying
# PATTERN (a propagation delay), at most ATTEMPTS times, SECONDS apart. Its output is shown as it comes.
run_retrying() {
  local pattern="$1" attempts="$2" pause="$3" attempt log
  shift 3
  if $DRY_RUN; then
    run "$@"
    return
  fi
  log="$(mktemp "${TMPDIR:-/tmp}/$NAME-attempt.XXXXXX")"
  for ((attempt = 1; ; attempt++)); do
    if "$@" 2>&1 | tee "$log"; then
      rm -f "$log"
      return 0
    fi
    if ! grep -q -- "$pattern" "$log" || ((attempt == attempts)); then
      rm -f "$log"
      return 1
    fi
    echo "# not ready yet ($pattern): trying again in $pause s ($attempt of $attempts)" >&2
    sleep "$pause"
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

# The first 40 hex digits of the SHA-256 of stdin (an alert policy label holds at most 63 characters).
digest() {
  local sum
  if command -v sha256sum >/dev/null; then
    sum="$(sha256sum)"
  else
    sum="$(shasum -a 256)"
  fi
  printf '%s' "${sum:0:40}"
}

# The "no successful run" alert: its resource name, or nothing when there is none.
missing_run_policy() {
  query "projects/$PROJECT_ID/alertPolicies/DEPLOYED" gcloud alpha monitoring policies list \
    --project="$PROJECT_ID" --filter="displayName=\"$NAME: no successful run\"" --limit=1 --format='value(name)'
}

# The alert policies rendered from deploy/alert-*.json.tftpl; ENABLED for the missing-run alert.
render_policy() {
  local outcomes
  case "$1" in
    runs-failing)
      outcomes="${FACT[outcomes.need_a_person]}"
      render "$SHARED/alert-runs-failing.json.tftpl" "name=$NAME" "outcomes=${outcomes// /, }"
      ;;
    runs-missing)
      local window=$((LOOKBACK_MINUTES + FACT[ALERT_SLACK_MINUTES])) wait
      wait=$window
      ((window > FACT[ALERT_WINDOW_CAP_MINUTES])) && window=${FACT[ALERT_WINDOW_CAP_MINUTES]}
      ((wait > FACT[ALERT_WAIT_CAP_MINUTES])) && wait=${FACT[ALERT_WAIT_CAP_MINUTES]}
      outcomes="${FACT[outcomes.good]}"
      render "$SHARED/alert-runs-missing.json.tftpl" "name=$NAME" "outcomes=${outcomes// /, }" \
        "window_minutes=$window" "window_seconds=$((window * 60))" "wait_minutes=$wait" \
        "wait_seconds=$((wait * 60))" "enabled=$2"
      ;;
  esac
}

# --- Operations ----------------------------------------------------------------------------------------

job_location=(--project="$PROJECT_ID" --location="$REGION")
function_location=(--project="$PROJECT_ID" --region="$REGION")

resume() {
  run gcloud scheduler jobs resume "$JOB" "${job_location[@]}"
  local policy
  policy="$(missing_run_policy)"
  [[ -z "$policy" ]] || run gcloud alpha monitoring policies update "$policy" --project="$PROJECT_ID" --enabled
  echo "# Resumed: the next tick runs on \"$SCHEDULE\" ($SCHEDULE_TIME_ZONE). Run one now:" \
    "gcloud scheduler jobs run $JOB --project=$PROJECT_ID --location=$REGION"
}

pause() {
  run gcloud scheduler jobs pause "$JOB" "${job_location[@]}"
  local policy
  policy="$(missing_run_policy)"
  [[ -z "$policy" ]] || run gcloud alpha monitoring policies update "$policy" --project="$PROJECT_ID" --no-enabled
  echo "# Paused: no run until ./deploy.sh resume; the time in between is caught up (up to MAX_CATCH_UP_MINUTES)."
}

rollback() {
  local revisions previous
  revisions="$(query "$NAME-00002-new"$'\n'"$NAME-00001-old" gcloud run revisions list --service="$NAME" \
    "${function_location[@]}" --sort-by=~metadata.creationTimestamp --limit=2 --format='value(metadata.name)')"
  previous="$(sed -n 2p <<<"$revisions")"
  if [[ -z "$previous" ]]; then
    $DRY_RUN || fail "no previous revision of $NAME to roll back to"
    previous="PREVIOUS"
  fi
  run gcloud run services update-traffic "$NAME" "${function_location[@]}" --to-revisions="$previous=100"
  echo "# All traffic goes to $previous. The next ./deploy.sh sends it to a new revision again."
}

# delete_if_found GROUP... -- ARGS...: `gcloud GROUP... delete ARGS --quiet` when describe finds it.
delete_if_found() {
  local group=()
  while [[ "$1" != -- ]]; do
    group+=("$1")
    shift
  done
  shift
  if exists gcloud "${group[@]}" describe "$@"; then
    run gcloud "${group[@]}" delete "$@" --quiet
  fi
}

uninstall() {
  if ! $CONFIRMED && ! $DRY_RUN; then
    fail "uninstall deletes the deployment $NAME from $PROJECT_ID: run it again with --yes"
  fi
  local policy metric account
  delete_if_found scheduler jobs -- "$JOB" "${job_location[@]}"
  delete_if_found functions -- "$NAME" "${function_location[@]}"
  delete_if_found pubsub topics -- "$TOPIC" --project="$PROJECT_ID"
  for policy in "$NAME: a run failed" "$NAME: no successful run"; do
    policy="$(query "projects/$PROJECT_ID/alertPolicies/DEPLOYED" gcloud alpha monitoring policies list \
      --project="$PROJECT_ID" --filter="displayName=\"$policy\"" --limit=1 --format='value(name)')"
    if [[ -n "$policy" ]]; then
      run gcloud alpha monitoring policies delete "$policy" --project="$PROJECT_ID" --quiet
    fi
  done
  for metric in "${METRICS[@]}"; do
    delete_if_found logging metrics -- "$NAME/$metric" --project="$PROJECT_ID"
  done
  run gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$BUILD_SA" \
    --role=roles/cloudbuild.builds.builder --format=none
  run gcloud projects remove-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$RUNTIME_SA" \
    --role=roles/datastore.user --condition="${STATE_CONDITION}" --format=none
  for account in "${ACCOUNTS[@]}"; do
    delete_if_found iam service-accounts -- "$account" --project="$PROJECT_ID"
  done
  echo "# Uninstalled. Kept: the run history (Firestore database $FIRESTORE_DATABASE, delete-protected)," \
    "the secrets with their values, the alert email channel, and the APIs. To remove them too:"
  echo "#   gcloud firestore databases update --database=$FIRESTORE_DATABASE --no-delete-protection --project=$PROJECT_ID"
  echo "#   gcloud firestore databases delete --database=$FIRESTORE_DATABASE --project=$PROJECT_ID"
  for variable in "${SECRET_VARIABLES[@]}"; do
    echo "#   gcloud secrets delete ${SECRETS[$variable]} --project=$PROJECT_ID"
  done
}

# Firestore has no IAM binding on a database, only on the project: roles/datastore.user there, with a
# condition on this database's name, is the narrowest grant (terraform/firestore.tf says the same).
STATE_CONDITION="expression=resource.name == \"projects/$PROJECT_ID/databases/$FIRESTORE_DATABASE\",title=$NAME-state-only,description=Only the $FIRESTORE_DATABASE Firestore database"

case "$COMMAND" in
  resume | pause | rollback | uninstall)
    "$COMMAND"
    exit 0
    ;;
esac

# --- The deployment ------------------------------------------------------------------------------------

echo "# 1. APIs (iam before the service accounts, firestore before the database, cloudresourcemanager"
echo "#    for the project's number)"
run gcloud services enable --project="$PROJECT_ID" \
  artifactregistry.googleapis.com cloudbuild.googleapis.com cloudfunctions.googleapis.com \
  cloudresourcemanager.googleapis.com cloudscheduler.googleapis.com eventarc.googleapis.com \
  firestore.googleapis.com iam.googleapis.com logging.googleapis.com monitoring.googleapis.com \
  pubsub.googleapis.com run.googleapis.com secretmanager.googleapis.com storage.googleapis.com

echo "# 2. Service accounts: the function's, the trigger's, and the build's (with its role, named"
echo "#    explicitly so that no prompt about the default build account can stop the deploy)"
for account in "${ACCOUNTS[@]}"; do
  if ! exists gcloud iam service-accounts describe "$account" --project="$PROJECT_ID"; then
    run gcloud iam service-accounts create "${account%%@*}" --project="$PROJECT_ID" --display-name="Notifierator ${account%%@*}"
  fi
done
run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$BUILD_SA" \
  --role=roles/cloudbuild.builds.builder --condition=None --format=none
# Pub/Sub's service agent mints the tokens Eventarc's push carries, as the trigger's account (projects
# from before April 2021 lack the grant, which gcloud adds on the project; here, on that account alone).
project_number="$(query 123456789012 gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)')"
run gcloud iam service-accounts add-iam-policy-binding "$TRIGGER_SA" --project="$PROJECT_ID" \
  --member="serviceAccount:service-${project_number:-PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com" \
  --role=roles/iam.serviceAccountTokenCreator --format=none

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
run gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$RUNTIME_SA" \
  --role=roles/datastore.user --format=none --condition="$STATE_CONDITION"

echo "# 5. Topic, and the scheduler job: created paused, before the function, so that no tick can run"
echo "#    before ./deploy.sh resume (an update keeps the job paused or running as it is)"
if ! exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT_ID"; then
  run gcloud pubsub topics create "$TOPIC" --project="$PROJECT_ID" --message-retention-duration=1d
fi
job_state="$(query ENABLED gcloud scheduler jobs describe "$JOB" "${job_location[@]}" --format='value(state)' 2>/dev/null || true)"
verb=update
[[ -n "$job_state" ]] || verb=create
run gcloud scheduler jobs "$verb" pubsub "$JOB" "${job_location[@]}" \
  --description="Asks Notifierator for the users of the last $LOOKBACK_MINUTES minutes." \
  --schedule="$SCHEDULE" --time-zone="$SCHEDULE_TIME_ZONE" --topic="$TOPIC" --message-body="$PAYLOAD" \
  --max-retry-attempts=3
if [[ "$verb" == create ]]; then
  run gcloud scheduler jobs pause "$JOB" "${job_location[@]}"
  job_state=PAUSED
fi

echo "# 6. Function (deploy creates or updates; uploads what .gcloudignore lets through). Right after"
echo "#    the APIs are enabled, Eventarc's service agent may not have its permissions yet: waited out."
run_retrying "Eventarc Service Agent" 6 60 gcloud functions deploy "$NAME" --gen2 "${function_location[@]}" \
  --runtime=python312 --entry-point=notify --source="$SOURCE_DIR" \
  --build-service-account="projects/$PROJECT_ID/serviceAccounts/$BUILD_SA" \
  --trigger-topic="$TOPIC" --trigger-service-account="$TRIGGER_SA" --retry \
  --ingress-settings=internal-only --memory="$MEMORY" --timeout="${TIMEOUT_SECONDS}s" \
  --min-instances=0 --max-instances="$MAX_INSTANCES" --concurrency=1 \
  --service-account="$RUNTIME_SA" --set-env-vars="$FUNCTION_ENV_FLAG"
run gcloud run services add-iam-policy-binding "$NAME" "${function_location[@]}" \
  --member="serviceAccount:$TRIGGER_SA" --role=roles/run.invoker --format=none

echo "# 7. Log-based metrics on the run summaries, by outcome (created or updated)"
run_summaries="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$NAME\" AND jsonPayload.event=\"run_summary\""
outcome_filter() {
  local outcome terms=()
  for outcome in ${FACT[outcomes.$1]}; do
    terms+=("jsonPayload.outcome=\"$outcome\"")
  done
  local joined
  joined="$(printf ' OR %s' "${terms[@]}")"
  printf '(%s)' "${joined:4}"
}
declare -A METRIC_FILTERS=(
  [failed_runs]="$run_summaries AND $(outcome_filter need_a_person)"
  [good_runs]="$run_summaries AND $(outcome_filter good)"
)
need_a_person="${FACT[outcomes.need_a_person]}"
good="${FACT[outcomes.good]}"
declare -A METRIC_DESCRIPTIONS=(
  [failed_runs]="$NAME run summaries that need a person: ${need_a_person// /, }"
  [good_runs]="$NAME run summaries of runs that did their job: ${good// /, }"
)
for metric in "${METRICS[@]}"; do
  verb=create
  if exists gcloud logging metrics describe "$NAME/$metric" --project="$PROJECT_ID"; then
    verb=update
  fi
  run gcloud logging metrics "$verb" "$NAME/$metric" --project="$PROJECT_ID" \
    --description="${METRIC_DESCRIPTIONS[$metric]}" --log-filter="${METRIC_FILTERS[$metric]}"
done

echo "# 8. Alert email (the channel is created, or pointed at ALERT_EMAIL)"
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

echo "# 9. Alert policies from deploy/alert-*.json.tftpl: created, or replaced only when their content"
echo "#    changed (the content_sha label); the missing-run alert is on while the job runs"
RENDERED="$(mktemp -d "${TMPDIR:-/tmp}/$NAME-policies.XXXXXX")"
if $DRY_RUN; then
  echo "# the policies below are rendered in $RENDERED"
else
  trap 'rm -rf "$RENDERED"' EXIT
fi
enabled=false
[[ "$job_state" != ENABLED ]] || enabled=true
for policy in "${POLICIES[@]}"; do
  file="$RENDERED/$policy.json"
  render_policy "$policy" "$enabled" >"$file"
  # What the label says, whatever the job's state: pause and resume switch the alert, not its content.
  content_sha="$({ render_policy "$policy" true && echo "$channel"; } | digest)"
  display_name="$(sed -n 's/^  "displayName": "\(.*\)",$/\1/p' "$file")"
  IFS=$'\t' read -r existing existing_sha < <(query "projects/$PROJECT_ID/alertPolicies/DEPLOYED"$'\t'"$content_sha" \
    gcloud alpha monitoring policies list --project="$PROJECT_ID" --filter="displayName=\"$display_name\"" \
    --limit=1 --format='value(name,userLabels.content_sha)' || true) || true
  if [[ "$policy" == runs-missing ]] && ! $MISSING_RUN_ALERT; then
    if [[ -n "${existing:-}" ]]; then
      run gcloud alpha monitoring policies delete "$existing" --project="$PROJECT_ID" --quiet
    fi
  elif [[ -n "${existing:-}" && "${existing_sha:-}" == "$content_sha" ]]; then
    echo "# $display_name: unchanged"
  elif [[ -n "${existing:-}" ]]; then
    run gcloud alpha monitoring policies update "$existing" --project="$PROJECT_ID" \
      --policy-from-file="$file" --set-notification-channels="$channel" --update-user-labels="content_sha=$content_sha"
  else
    # A policy on a log-based metric made seconds earlier fails ("Cannot find metric(s)") until Cloud
    # Monitoring sees the metric, which can take minutes.
    run_retrying "Cannot find metric" 11 60 gcloud alpha monitoring policies create --project="$PROJECT_ID" \
      --policy-from-file="$file" --notification-channels="$channel" --user-labels="content_sha=$content_sha"
  fi
done

echo "# Done. Add each secret's value once (read from stdin, never echoed), for example:"
for variable in "${SECRET_VARIABLES[@]}"; do
  echo "#   gcloud secrets versions add ${SECRETS[$variable]} --project=$PROJECT_ID --data-file=-   # $variable"
done
echo "# Then check credentials and settings (sends nothing): .venv/bin/python -m notifier check --env-file $CONFIG"
if [[ "$job_state" != ENABLED ]]; then
  echo "# The schedule is paused until then: ./deploy.sh --config $CONFIG resume"
fi
echo "# Trigger a run by hand: gcloud scheduler jobs run $JOB --project=$PROJECT_ID --location=$REGION"
