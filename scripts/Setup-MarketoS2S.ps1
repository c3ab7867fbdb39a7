<#
.SYNOPSIS
  The Marketo "Step 2 of 3" runbook for PowerShell 7: a thin mirror of setup-marketo-s2s.sh.

.DESCRIPTION
  Runs preflight (read-only checks; skip with -SkipPreflight), register-app, grant-consent, make-secret, set-hrd-policy, assign-role, configure-marketo,
  publish-customizations (-IfChanged), the optional add-sync-filter, and verify-sync on one state
  file (same format as the bash runbook), stops at the first failure with that step's exit code
  and the command that resumes, and ends with the values to enter in Marketo step 3 (never the
  secret itself). Not exercised by CI (the build machines have no PowerShell).

.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com
.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com -From assign-role
.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com -WhatIf
  Every read, no write: each step prints its plan (the same as -DryRun, as PowerShell users expect).
.EXAMPLE
  ./scripts/Setup-MarketoS2S.ps1 -Tenant contoso.onmicrosoft.com -DynamicsUrl https://contoso.crm.dynamics.com -ExpiresIn 90d -Timeout 2m -Auth env -Verbose
  -Cloud, -Auth, -Timeout, -AuthorityHost, -GraphUrl, -LoginClientId, -CaFile, -Retarget and
  -Verbose (as -v) go to every step; -ExpiresIn and -MinValidity to make-secret, -HrdMode to
  set-hrd-policy (--mode), -Role to assign-role and verify-sync, -Async to
  publish-customizations, -WarnDays to verify-sync.
#>
[CmdletBinding(SupportsShouldProcess)]
param(
  [string]$Tenant,
  [string]$DynamicsUrl,
  [string]$Name,
  [string]$State = "./marketo-s2s.state.json",
  [ValidateSet("preflight","register-app","grant-consent","make-secret","set-hrd-policy","assign-role","configure-marketo","publish-customizations","add-sync-filter","verify-sync")]
  [string]$From,
  [switch]$DryRun,
  [string]$SecretFile,
  [string]$SyncFilter,
  [switch]$SkipPreflight,
  [ValidateSet("public","usgov","usgovhigh","usgovdod","china")]
  [string]$Cloud,
  [ValidateSet("env","cache","az","device-code","certificate","workload-identity","managed-identity")]
  [string]$Auth,
  [string]$Timeout,
  [string]$AuthorityHost,
  [string]$GraphUrl,
  [string]$LoginClientId,
  [string]$CaFile,
  [switch]$Retarget,
  [string]$ExpiresIn,
  [string]$MinValidity,
  [ValidateSet("auto","always","remove")]
  [string]$HrdMode,
  [string[]]$Role,
  [switch]$Async,
  [int]$WarnDays
)
$ErrorActionPreference = "Stop"
$steps = @("preflight","register-app","grant-consent","make-secret","set-hrd-policy","assign-role","configure-marketo","publish-customizations","add-sync-filter","verify-sync")

$binDir = $env:MKTO_S2S_BIN
if (-not $binDir) {
  $onPath = Get-Command register-app -ErrorAction SilentlyContinue
  if ($onPath) { $binDir = Split-Path $onPath.Source }
  elseif (Test-Path "$PSScriptRoot/../target/release/register-app*") { $binDir = "$PSScriptRoot/../target/release" }
  else { throw "the marketo-s2s tools are not built: run cargo build --release" }
}

# -WhatIf is PowerShell's dry run: every read, no write, each step prints its plan.
if ($WhatIfPreference) { $DryRun = [switch]::new($true) }

$workState = $State
if ($DryRun) {
  $workState = [System.IO.Path]::GetTempFileName()
  if (Test-Path $State) { Copy-Item $State $workState -Force } else { Set-Content $workState "{}" }
}
$common = @("--state", $workState)
if ($Tenant) { $common += @("--tenant", $Tenant) }
if ($DynamicsUrl) { $common += @("--dynamics-url", $DynamicsUrl) }
if ($Cloud) { $common += @("--cloud", $Cloud) }
if ($Auth) { $common += @("--auth", $Auth) }
if ($Timeout) { $common += @("--timeout", $Timeout) }
if ($AuthorityHost) { $common += @("--authority-host", $AuthorityHost) }
if ($GraphUrl) { $common += @("--graph-url", $GraphUrl) }
if ($LoginClientId) { $common += @("--login-client-id", $LoginClientId) }
if ($CaFile) { $common += @("--ca-file", $CaFile) }
if ($Retarget) { $common += "--retarget" }
if ($VerbosePreference -eq "Continue") { $common += "-v" }
$roleArgs = @()
foreach ($r in $Role) { $roleArgs += @("--role", $r) }
# The tools never write --state in a dry run: each step's would-be document goes to --plan,
# which becomes the next step's input.
if ($DryRun) { $common += @("--dry-run", "--plan", "$workState.next") }

$started = -not $From
$planned = $false
$n = 0
$total = if ($SyncFilter) { $steps.Count } else { $steps.Count - 1 }
if ($SkipPreflight) { $total-- }
foreach ($step in $steps) {
  if ($step -eq "add-sync-filter" -and -not $SyncFilter) { continue }
  if ($step -eq "preflight" -and $SkipPreflight) { continue }
  $n++
  if ($step -eq $From) { $started = $true }
  if (-not $started) { Write-Host "==> [$n/$total] ${step}: skipped (-From $From)"; continue }
  $stepArgs = @()
  switch ($step) {
    "register-app" { if ($Name) { $stepArgs += @("--name", $Name) } }
    "make-secret" {
      if ($SecretFile) { $stepArgs += @("--secret-file", $SecretFile) }
      if ($ExpiresIn) { $stepArgs += @("--expires-in", $ExpiresIn) }
      if ($MinValidity) { $stepArgs += @("--min-validity", $MinValidity) }
    }
    "set-hrd-policy" { if ($HrdMode) { $stepArgs += @("--mode", $HrdMode) } }
    "assign-role" { $stepArgs += $roleArgs }
    "publish-customizations" { $stepArgs += "--if-changed"; if ($Async) { $stepArgs += "--async" } }
    "verify-sync" { $stepArgs += $roleArgs; if ($PSBoundParameters.ContainsKey("WarnDays")) { $stepArgs += @("--warn-days", $WarnDays) } }
    "add-sync-filter" { foreach ($e in $SyncFilter.Split(",")) { $stepArgs += @("--entity", $e.Trim()) } }
  }
  Write-Host "==> [$n/$total] $step"
  & (Join-Path $binDir $step) @common @stepArgs
  $code = $LASTEXITCODE
  if ($DryRun -and (Test-Path "$workState.next")) { Move-Item "$workState.next" $workState -Force }
  if ($DryRun -and (Select-String -Path $workState -Pattern '"method"' -Quiet)) { $planned = $true }
  if ($code -ne 0) {
    # As the bash runbook: in a dry run, a later step that needs the ids of planned (unsent)
    # writes (exit 2), or verify-sync on them, ends the dry run; any other failure is real.
    if ($DryRun -and $planned -and ($code -eq 2 -or $step -eq "verify-sync")) {
      Write-Host "==> dry run: $step depends on writes planned above; stopping the dry run here"
      break
    }
    # As the bash runbook: name the state file only where there is one (a dry run never writes
    # it; a step that fails before the first write of a new setup leaves none).
    if ($DryRun) {
      $where = "this dry run wrote nothing"
      if (Test-Path $State -PathType Leaf) { $where += "; $State is unchanged" }
    } elseif (Test-Path $State -PathType Leaf) {
      $where = "the state so far is in $State"
    } else {
      $where = "no state file was written yet"
    }
    Write-Host "${step} failed (exit $code); $where."
    # The same parameters, quoted, so the line can be pasted back as it is.
    $resume = @("&", "'$($PSCommandPath -replace "'", "''")'")
    foreach ($p in $PSBoundParameters.GetEnumerator()) {
      if ($p.Key -eq "From") { continue }
      if ($p.Value -is [switch]) { if ($p.Value) { $resume += "-$($p.Key)" } }
      elseif ($p.Value -is [array]) { $resume += "-$($p.Key) " + (($p.Value | ForEach-Object { "'$($_ -replace "'", "''")'" }) -join ",") }
      else { $resume += "-$($p.Key) '$($p.Value.ToString() -replace "'", "''")'" }
    }
    # A dry run resumes as a dry run: the pasted line must not turn it into real writes.
    if ($DryRun -and -not ($PSBoundParameters.ContainsKey("DryRun") -or $PSBoundParameters.ContainsKey("WhatIf"))) { $resume += "-DryRun" }
    $resume += "-From $step"
    Write-Host "To resume once fixed: $($resume -join ' ')"
    exit $code
  }
}
if ($DryRun) { Remove-Item $workState -ErrorAction SilentlyContinue; Write-Host "==> dry run done: nothing was written"; exit 0 }

$doc = Get-Content $State -Raw | ConvertFrom-Json
$step3 = $doc.verify.marketo_step3
Write-Host ""
Write-Host "Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):"
Write-Host "  Dynamics URL : $($step3.dynamics_url)"
Write-Host "  Tenant ID    : $($step3.tenant_id)"
Write-Host "  Client ID    : $($step3.client_id)"
Write-Host "  Username     : $($step3.username)"
Write-Host "  Client secret: in the file $($step3.secret_file) (beside the state file when not a full path; paste its content, it is shown nowhere else)"
