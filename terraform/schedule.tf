# The schedule's interval, which is each run's window, so that the windows tile time. variables.tf
# admits only schedules of one fixed interval (deploy/variables.env, SCHEDULE.pattern): every N minutes,
# hourly, every N hours or daily. deploy.sh and notifier/envfile.py read a schedule the same way.
# No resources here (tests evaluate this file with `terraform console`).
locals {
  cron        = regexall("[^ ]+", var.schedule)
  cron_minute = try(local.cron[0], "")
  cron_hour   = try(local.cron[1], "")
  schedule_minutes = try(
    local.cron_hour == "*" ? (
      local.cron_minute == "*" ? 1 : startswith(local.cron_minute, "*/") ? tonumber(trimprefix(local.cron_minute, "*/")) : 60
    ) : startswith(local.cron_hour, "*/") ? 60 * tonumber(trimprefix(local.cron_hour, "*/")) : 1440,
    null,
  )
  lookback_minutes = coalesce(var.lookback_minutes, local.schedule_minutes, 60)
}
