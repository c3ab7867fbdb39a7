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
#>
[CmdletBinding()]
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
  [switch]$SkipPreflight
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

$workState = $State
if ($DryRun) {
  $workState = [System.IO.Path]::GetTempFileName()
  if (Test-Path $State) { Copy-Item $State $workState -Force } else { Set-Content $workState "{}" }
}
$common = @("--state", $workState)
if ($Tenant) { $common += @("--tenant", $Tenant) }
if ($DynamicsUrl) { $common += @("--dynamics-url", $DynamicsUrl) }
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
    "make-secret" { if ($SecretFile) { $stepArgs += @("--secret-file", $SecretFile) } }
    "publish-customizations" { $stepArgs += "--if-changed" }
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
    Write-Host "${step} failed (exit $code); the state so far is in $State."
    # The same parameters, quoted, so the line can be pasted back as it is.
    $resume = @("&", "'$($PSCommandPath -replace "'", "''")'")
    foreach ($p in $PSBoundParameters.GetEnumerator()) {
      if ($p.Key -eq "From") { continue }
      if ($p.Value -is [switch]) { if ($p.Value) { $resume += "-$($p.Key)" } }
      else { $resume += "-$($p.Key) '$($p.Value.ToString() -replace "'", "''")'" }
    }
    $resume += "-From $step"
    Write-Host "To resume once fixed: $($resume -join ' ')"
    exit $code
  }
}
if ($DryRun) { Remove-Item $workState -ErrorAction SilentlyContinue; Write-Host "==> dry run done: nothing was written"; exit 0 }

$doc = Get-Content $State -Raw | ConvertFrom-Json
Write-Host ""
Write-Host "Marketo step 3 (Admin > CRM > Microsoft Dynamics > Enter Credentials):"
Write-Host "  Dynamics URL : $($doc.dynamics.url)"
Write-Host "  Tenant ID    : $($doc.tenant.id)"
Write-Host "  Client ID    : $($doc.app.client_id)"
Write-Host "  Username     : $($doc.dynamics.username)"
Write-Host "  Client secret: in the file $($doc.secret.file) (paste its content; it is shown nowhere else)"
