-- DropIndex
DROP INDEX "Manifest_repositoryId_subject_idx";

-- CreateIndex
CREATE INDEX "Manifest_repositoryId_subject_pushedAt_idx" ON "Manifest"("repositoryId", "subject", "pushedAt");
