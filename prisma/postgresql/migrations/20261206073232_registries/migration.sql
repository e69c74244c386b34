-- AlterTable
ALTER TABLE "Project" ADD COLUMN     "registryId" INTEGER;

-- CreateTable
CREATE TABLE "Registry" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "credentialType" TEXT NOT NULL DEFAULT '',
    "accessKey" TEXT NOT NULL DEFAULT '',
    "accessSecret" TEXT NOT NULL DEFAULT '',
    "insecure" BOOLEAN NOT NULL DEFAULT false,
    "caCertificate" TEXT,
    "status" TEXT NOT NULL DEFAULT 'unknown',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Registry_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Registry_name_key" ON "Registry"("name");
