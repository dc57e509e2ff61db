# fleet-script: fix.registry
# fleet-version: 1
# Sets one DWORD under HKLM (value $null removes it, which is how a rollback restores an
# absent value). Reports the previous value or its absence. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$path = [string]$p.path
$name = [string]$p.name
if (-not $path.StartsWith('HKLM:\')) { throw "fix.registry only writes under HKLM:\, not '$path'" }
# An empty name is the key's (Default) value: never what a plan means.
if (-not $name) { throw 'fix.registry: a value name is required' }

function Read-Value {
    # As gather.ps1 reads it: RegistryKey.GetValue takes the name literally (Get-ItemProperty
    # -Name takes wildcards), and only an absent key or value is $null; access errors throw.
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    $value = (Get-Item -LiteralPath $path).GetValue($name)
    if ($null -eq $value) { return $null }
    return [int]$value
}

function Read-Kind {
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    $key = Get-Item -LiteralPath $path
    if ($null -eq $key.GetValue($name)) { return $null }
    return [string]$key.GetValueKind($name)
}

$before = Read-Value
$kindBefore = Read-Kind
if ($null -eq $p.value) {
    if ($null -ne $before) { Remove-ItemProperty -LiteralPath $path -Name $name }
} elseif (($null -eq $before) -or ($before -ne [int]$p.value) -or ($kindBefore -ne 'DWord')) {
    # A REG_SZ "2" reads as 2 here but is not the DWORD Windows reads: rewrite it as one.
    if (-not (Test-Path -LiteralPath $path)) { New-Item -Path $path -Force | Out-Null }
    New-ItemProperty -LiteralPath $path -Name $name -Value ([int]$p.value) -PropertyType DWord -Force | Out-Null
}
$after = Read-Value
$changed = ($before -ne $after) -or ($kindBefore -ne (Read-Kind))
$change = @{ target = "$path\$name"; before = $before; after = $after; changed = $changed }
Write-Frame @{ changes = @($change) }
