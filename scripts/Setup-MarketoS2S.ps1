<#
.SYNOPSIS
  The Marketo "Step 2 of 3" runbook for PowerShell 7: a thin mirror of setup-marketo-s2s.sh.

.DESCRIPTION
  Runs preflight (read-only checks; skip with -SkipPreflight), register-app, grant-consent,
  make-secret, set-hrd-policy, assign-role, configure-marketo, publish-customizations
  (--if-changed), the optional add-sync-filter, and verify-sync on one state file (same format as
  the bash runbook), stops at the first failure or interruption with that step's exit code and the
  command that resumes, and ends with the values to enter in Marketo step 3 (never the secret
  itself). The first line names the target; a state file with no target yet and a tenant or org
  only from the environment (AZURE_TENANT_ID, MKTO_S2S_DYNAMICS_URL) is refused unless -Tenant and
  -DynamicsUrl are given or it is confirmed at the prompt. It calls the same tools with the same
  flags as the bash runbook (tests/it/runbook.rs compares the two tables), and is NOT exercised
  by CI (the build machines have no PowerShell).

.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com
.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com -From assign-role -PurgeDeleted
.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com -WhatIf
  Every read, no write: each step prints its plan (the same as -DryRun, as PowerShell users expect).
.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com -ExpiresIn 90d -Timeout 2m -Auth env -Verbose
  Each parameter goes to the steps the table below names; -Verbose passes -v, -Debug passes -vv.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
  [string]$Tenant,
  [string]$DynamicsUrl,
  [string]$State = "./marketo-s2s.state.json",
  [ValidateSet("preflight","register-app","grant-consent","make-secret","set-hrd-policy","assign-role","configure-marketo","publish-customizations","add-sync-filter","verify-sync")]
  [string]$From,
  [switch]$DryRun,
  [string]$SyncFilter,
  [switch]$SkipPreflight,
  [ValidateSet("public","usgov","usgovhigh","usgovdod","china")]
  [string]$Cloud,
  [ValidateSet("env","certificate","workload-identity","managed-identity","cache","az","device-code")]
  [string]$Auth,
  [string]$Timeout,
  [string]$AuthorityHost,
  [string]$GraphUrl,
  [string]$LoginClientId,
  [string]$CaFile,
  [switch]$Retarget,
  [ValidateSet("auto","always","never")]
  [string]$Color,
  [switch]$Quiet,
  [string]$Name,
  [string]$UniqueName,
  [string]$ClientId,
  [string]$ExpiresIn,
  [string]$MinValidity,
  [switch]$Rotate,
  [string]$SecretFile,
  [ValidateSet("auto","always","remove")]
  [string]$HrdMode,
  [switch]$Replace,
  [string[]]$Role,
  [string]$BusinessUnit,
  [switch]$PurgeDeleted,
  [string]$RecordName,
  [string]$ConfigEntity,
  [string]$ConfigEntitySet,
  [string]$UserLookup,
  [string]$UserNavProperty,
  [switch]$ReplaceSyncUser,
  [switch]$Async,
  [string]$PublishTimeout,
  [string]$WarnDays
)
$ErrorActionPreference = "Stop"
$steps = @("preflight","register-app","grant-consent","make-secret","set-hrd-policy","assign-role","configure-marketo","publish-customizations","add-sync-filter","verify-sync")

# The parameters that go to the tools: the parameter, the steps it goes to (* = every step) and
# the tool's flag — the bash runbook's table, row for row (Verbose and Debug are PowerShell's
# common parameters for -v and -vv).
$PassTable = @(
  @("Cloud",           "*",                       "--cloud"),
  @("Auth",            "*",                       "--auth"),
  @("Timeout",         "*",                       "--timeout"),
  @("AuthorityHost",   "*",                       "--authority-host"),
  @("GraphUrl",        "*",                       "--graph-url"),
  @("LoginClientId",   "*",                       "--login-client-id"),
  @("CaFile",          "*",                       "--ca-file"),
  @("Retarget",        "*",                       "--retarget"),
  @("Color",           "*",                       "--color"),
  @("Verbose",         "*",                       "-v"),
  @("Debug",           "*",                       "-vv"),
  @("Quiet",           "*",                       "-q"),
  @("Name",            "register-app",            "--name"),
  @("UniqueName",      "register-app",            "--unique-name"),
  @("ClientId",        "register-app",            "--client-id"),
  @("ExpiresIn",       "preflight,make-secret",   "--expires-in"),
  @("MinValidity",     "make-secret",             "--min-validity"),
  @("Rotate",          "make-secret",             "--rotate"),
  @("SecretFile",      "make-secret",             "--secret-file"),
  @("HrdMode",         "set-hrd-policy",          "--mode"),
  @("Replace",         "set-hrd-policy",          "--replace"),
  @("Role",            "assign-role,verify-sync", "--role"),
  @("BusinessUnit",    "assign-role",             "--business-unit"),
  @("PurgeDeleted",    "assign-role",             "--purge-deleted"),
  @("RecordName",      "configure-marketo",       "--record-name"),
  @("ConfigEntity",    "configure-marketo",       "--config-entity"),
  @("ConfigEntitySet", "configure-marketo",       "--config-entity-set"),
  @("UserLookup",      "configure-marketo",       "--user-lookup"),
  @("UserNavProperty", "configure-marketo",       "--user-nav-property"),
  @("ReplaceSyncUser", "configure-marketo",       "--replace-sync-user"),
  @("Async",           "publish-customizations",  "--async"),
  @("PublishTimeout",  "publish-customizations",  "--publish-timeout"),
  @("WarnDays",        "verify-sync",             "--warn-days")
)
$Bound = $PSBoundParameters

# A word as PowerShell reads it back: in single quotes, a quote doubled.
function Quote([string]$word) { return "'" + ($word -replace "'", "''") + "'" }

function Fail([string]$message, [string]$hint = "see Get-Help $(Quote $PSCommandPath)") {
  [Console]::Error.WriteLine("Setup-MarketoS2S: error: $message")
  [Console]::Error.WriteLine("Setup-MarketoS2S: hint: $hint")
  exit 2
}

# -WhatIf is PowerShell's dry run: every read, no write, each step prints its plan.
if ($WhatIfPreference) { $DryRun = [switch]::new($true) }
if ($From -eq "add-sync-filter" -and -not $SyncFilter) {
  Fail "-From add-sync-filter needs -SyncFilter: without it that step does not run" "add -SyncFilter lead,contact, or resume from verify-sync"
}
if ($From -eq "preflight" -and $SkipPreflight) {
  Fail "-From preflight and -SkipPreflight contradict each other" "leave one out: -From register-app starts after preflight"
}

# -SyncFilter "lead, contact": each entity trimmed, an empty one (a trailing comma) dropped.
$syncEntities = @()
if ($SyncFilter) {
  $syncEntities = @($SyncFilter.Split(",") | ForEach-Object { $_.Trim() } | Where-Object { $_ })
  if ($syncEntities.Count -eq 0) { Fail "-SyncFilter names no entity" "name them with commas between: -SyncFilter lead,contact" }
}

# Where the tools are, as the bash runbook looks: bin/ beside this script first (a release
# archive: the tools of the same release), then PATH, then a build of this checkout.
$binDir = $env:MKTO_S2S_BIN
if (-not $binDir) {
  $onPath = Get-Command register-app -ErrorAction SilentlyContinue
  if (Test-Path "$PSScriptRoot/bin/register-app*") { $binDir = "$PSScriptRoot/bin" }
  elseif ($onPath) { $binDir = Split-Path $onPath.Source }
  elseif (Test-Path "$PSScriptRoot/../target/release/register-app*") { $binDir = "$PSScriptRoot/../target/release" }
  elseif (Test-Path "$PSScriptRoot/../target/debug/register-app*") { $binDir = "$PSScriptRoot/../target/debug" }
  else {
    Fail "the marketo-s2s tools are not on PATH, nor in $PSScriptRoot/bin (a release archive's), nor in $PSScriptRoot/../target/release or target/debug (a build)" "put the release archive's bin folder on PATH (or set MKTO_S2S_BIN to a folder); in a source checkout, run cargo build --release"
  }
}

# The steps this run will run, in order.
$runSteps = @()
$started = -not $From
foreach ($step in $steps) {
  if ($step -eq "add-sync-filter" -and -not $SyncFilter) { continue }
  if ($step -eq "preflight" -and $SkipPreflight) { continue }
  if ($step -eq $From) { $started = $true }
  if ($started) { $runSteps += $step }
}

# The words a step runs with, reading $source.
function Step-Args([string]$step, [string]$source) {
  $stepArgs = @("--state", $source)
  if ($Tenant) { $stepArgs += @("--tenant", $Tenant) }
  if ($DynamicsUrl) { $stepArgs += @("--dynamics-url", $DynamicsUrl) }
  foreach ($row in $PassTable) {
    $param, $to, $flag = $row
    if (-not $Bound.ContainsKey($param)) { continue }
    if ($to -ne "*" -and ($to.Split(",") -notcontains $step)) { continue }
    $v = $Bound[$param]
    if ($v -is [switch]) { if ($v) { $stepArgs += $flag } }
    else { foreach ($x in @($v)) { $stepArgs += @($flag, "$x") } }
  }
  if ($step -eq "publish-customizations") { $stepArgs += "--if-changed" }
  if ($step -eq "add-sync-filter") { foreach ($e in $syncEntities) { $stepArgs += @("--entity", $e) } }
  return ,$stepArgs
}

# As the bash runbook: every step's flags are checked before the first step runs (a tool checks
# each value as it reads its command line and stops at --help, reading no document), so a bad
# value for a late step (-WarnDays abc) is refused before any step has written.
foreach ($step in $runSteps) {
  $tool = Join-Path $binDir $step
  if (-not (Test-Path "$tool*")) {
    Fail "$tool is missing: the tools there are not all of the marketo-s2s tools" "set MKTO_S2S_BIN to the folder that holds all of them"
  }
  $checkArgs = Step-Args $step $State
  & $tool @checkArgs --help > $null
  if ($LASTEXITCODE -ne 0) {
    Fail "$step refuses the parameters given for it (see above); nothing was run" "correct that value and run the same command again"
  }
}

# ---- the target, named before anything runs ----
$doc = $null
if ((Test-Path $State -PathType Leaf) -and (Get-Item $State).Length -gt 0) { $doc = Get-Content $State -Raw | ConvertFrom-Json }
# What the document says is shown without control characters, as the bash runbook shows it:
# a state file from elsewhere must not drive the terminal.
function Without-Controls($value) { if ($null -eq $value) { return "" }; return ([string]$value) -replace '[\x00-\x1F\x7F]', '' }
$docTenant = Without-Controls $doc.tenant.id
$docOrg = Without-Controls $doc.dynamics.url
$docDomain = Without-Controls $doc.tenant.domain
$docOrgName = Without-Controls $doc.dynamics.org_name
$docSignIn = Without-Controls $doc.sign_in.method
$docSignInClient = Without-Controls $doc.sign_in.client_id
function From-Where($flag, $flagName, $fromDoc, $envName) {
  if ($flag) { return "$flag (from $flagName)" }
  if ($fromDoc) { return "$fromDoc (from the state file)" }
  $e = [Environment]::GetEnvironmentVariable($envName)
  if ($e) { return "$e (from $envName in the environment)" }
  return "not given"
}
if ($docTenant -and $docDomain) { $docTenant = "$docDomain $docTenant" }
if ($docOrg -and $docOrgName) { $docOrg = "$docOrg ($docOrgName)" }
$docSignInShown = if ($docSignInClient) { "$docSignIn as $docSignInClient" } else { $docSignIn }
$signIn = if ($Auth) { "-Auth $Auth" } elseif ($env:MKTO_S2S_AUTH) { "--auth $($env:MKTO_S2S_AUTH) (from MKTO_S2S_AUTH)" } elseif ($docSignIn) { "$docSignInShown (the state file's sign_in)" } elseif ($env:AZURE_CLIENT_ID) { "service principal $($env:AZURE_CLIENT_ID) (AZURE_CLIENT_ID in the environment)" } elseif ($env:IDENTITY_ENDPOINT) { "managed identity (IDENTITY_ENDPOINT)" } else { "the token cache, az or a device code, whichever works first" }
$stateShown = if (Test-Path $State -PathType Leaf) { $State } else { "$State (new)" }
[Console]::Error.WriteLine("Setup-MarketoS2S: target: tenant $(From-Where $Tenant '-Tenant' $docTenant 'AZURE_TENANT_ID'); org $(From-Where $DynamicsUrl '-DynamicsUrl' $docOrg 'MKTO_S2S_DYNAMICS_URL'); state file $stateShown; sign-in: $signIn")

# Customer A's leftover variables must not start customer B's setup.
if (-not $docTenant -and -not $docOrg -and (-not $Tenant -or -not $DynamicsUrl) -and ($env:AZURE_TENANT_ID -or $env:MKTO_S2S_DYNAMICS_URL)) {
  $question = "the state file names no tenant or org yet, and the target above comes from the environment"
  if (-not [Console]::IsInputRedirected -and -not [Console]::IsErrorRedirected) {
    $answer = Read-Host "Setup-MarketoS2S: $question. Set up exactly this tenant and org? Type yes to continue"
    if ($answer -notin @("y", "yes")) { Fail "not confirmed: nothing was run" "name the target with -Tenant and -DynamicsUrl" }
  } else {
    # As the bash runbook: the command to paste, naming what is missing from it (a placeholder
    # where the environment does not have it either), then the rest of the parameters.
    $confirm = @("&", (Quote $PSCommandPath))
    if (-not $Tenant) { $confirm += "-Tenant " + (Quote $(if ($env:AZURE_TENANT_ID) { $env:AZURE_TENANT_ID } else { "<tenant>" })) }
    if (-not $DynamicsUrl) { $confirm += "-DynamicsUrl " + (Quote $(if ($env:MKTO_S2S_DYNAMICS_URL) { $env:MKTO_S2S_DYNAMICS_URL } else { "<org url>" })) }
    Fail "$question (perhaps left over from another customer), and there is no terminal to confirm it on" "if it is the right customer, name it on the command line: $($confirm -join ' ') ..."
  }
}

# ---- the steps ----
function Resume-Command([string]$step) {
  $resume = @("&", (Quote $PSCommandPath))
  foreach ($p in $Bound.GetEnumerator()) {
    if ($p.Key -eq "From") { continue }
    if ($p.Value -is [switch]) { if ($p.Value) { $resume += "-$($p.Key)" } }
    elseif ($p.Value -is [array]) { $resume += "-$($p.Key) " + (($p.Value | ForEach-Object { Quote $_ }) -join ",") }
    else { $resume += "-$($p.Key) " + (Quote $p.Value.ToString()) }
  }
  # A dry run resumes as a dry run: the pasted line must not turn it into real writes.
  if ($DryRun -and -not ($Bound.ContainsKey("DryRun") -or $Bound.ContainsKey("WhatIf"))) { $resume += "-DryRun" }
  return "To resume once fixed: $($resume -join ' ') -From $step"
}
function Where-State {
  if ($DryRun) { $w = "this dry run wrote nothing"; if (Test-Path $State -PathType Leaf) { $w += "; $State is unchanged" }; return $w }
  if (Test-Path $State -PathType Leaf) { return "the state so far is in $State" }
  return "no state file was written yet"
}

$source = $State
$plans = @()
$current = ""
$started = -not $From
# The steps of this dry run that planned writes.
$plannedBy = @()
$n = 0
$total = $steps.Count
if (-not $SyncFilter) { $total-- }
if ($SkipPreflight) { $total-- }
try {
  foreach ($step in $steps) {
    if ($step -eq "add-sync-filter" -and -not $SyncFilter) { continue }
    if ($step -eq "preflight" -and $SkipPreflight) { continue }
    $n++
    if ($step -eq $From) { $started = $true }
    if (-not $started) { Write-Host "==> [$n/$total] ${step}: skipped (-From $From)"; continue }
    $stepArgs = Step-Args $step $source
    # A dry run's would-be documents live beside the state file (never in it) and feed the
    # next step, so a secret file recorded by name beside the state file is found.
    if ($DryRun) {
      $dir = Split-Path -Parent $State
      if (-not $dir) { $dir = "." }
      $next = Join-Path $dir ".$(Split-Path -Leaf $State).dry-run.$PID.$n"
      $plans += $next
      $stepArgs += @("--dry-run", "--plan", $next)
    }
    $current = $step
    Write-Host "==> [$n/$total] $step"
    & (Join-Path $binDir $step) @stepArgs
    $code = $LASTEXITCODE
    # A dry run's step writes its would-be document, also when it fails (with its error).
    $plan = $null
    if ($DryRun -and (Test-Path $next -PathType Leaf) -and (Get-Item $next).Length -gt 0) {
      $plan = Get-Content $next -Raw | ConvertFrom-Json
    }
    if ($code -eq 0 -and $plan) {
      $source = $next
      # `plan` holds this step's writes only: each step replaces it.
      if ($plan.plan) { $plannedBy += $step }
    }
    if ($code -ne 0) {
      $current = ""
      # As the bash runbook: a dry run ends (successfully) at the first step that misses a key
      # a write planned above (and not sent) would create, or at verify-sync's checks (exit 6)
      # of planned writes; any other failure is the step's own, as in a real run.
      $err = if ($plan) { $plan.steps.$step.error } else { $null }
      if ($err -and $err.missing_key -and $err.written_by -and ($plannedBy -contains $err.written_by)) {
        Write-Host "==> dry run: $step needs $($err.missing_key), which $($err.written_by) would write (planned above, not sent); stopping the dry run here"
        break
      }
      if ($DryRun -and $step -eq "verify-sync" -and $code -eq 6 -and $plannedBy.Count -gt 0) {
        Write-Host "==> dry run: verify-sync checks the writes planned above (not sent); stopping the dry run here"
        break
      }
      Write-Host "${step} failed (exit $code); $(Where-State)."
      Write-Host (Resume-Command $step)
      exit $code
    }
  }
  $current = ""
} finally {
  # Ctrl-C stops the script between or inside a step: say so, with the command that resumes.
  if ($current) {
    Write-Host "interrupted during $current; $(Where-State)."
    Write-Host (Resume-Command $current)
  }
  # -WhatIf would make Remove-Item only say "What if": the plan files are this script's own
  # scratch, so they go in a dry run too.
  foreach ($p in $plans) { Remove-Item -LiteralPath $p -ErrorAction SilentlyContinue -WhatIf:$false -Confirm:$false }
}
if ($DryRun) { Write-Host "==> dry run done: nothing was written"; exit 0 }

$doc = Get-Content $State -Raw | ConvertFrom-Json
$step3 = $doc.verify.marketo_step3
Write-Host ""
Write-Host "Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):"
Write-Host "  Dynamics URL : $($step3.dynamics_url)"
Write-Host "  Tenant ID    : $($step3.tenant_id)"
Write-Host "  Client ID    : $($step3.client_id)"
Write-Host "  Username     : $($step3.username)"
Write-Host "  Client secret: in the file $($step3.secret_file) (beside the state file when not a full path; paste its content, it is shown nowhere else)"
